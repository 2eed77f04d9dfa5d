import fp from 'fastify-plugin'
import { createLogoService, type LogoService } from '../src/logo-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    logos: LogoService
  }
}

export default fp(async function servicePlugin (fastify) {
  fastify.decorate('logos', createLogoService({
    store: fastify.store,
    bus: fastify.bus,
    cache: fastify.syncCache,
    onPublishError: (err, event) => fastify.log.error({ err, event: event.kind }, 'bus publish failed after commit; subscribers will catch up on resync')
  }))
}, { name: 'service', dependencies: ['store', 'bus', 'cache'] })
