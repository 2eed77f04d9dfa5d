import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import { createMemoryBus } from '../src/bus/memory.js'
import type { Bus } from '../src/bus/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    bus: Bus
    /** This process's id on the bus. */
    replicaId: string
  }
}

/** In-process bus on the embedded default; Redis pub/sub when REDIS_URL is set. */
export default fp(async function busPlugin (fastify) {
  const replicaId = randomUUID()
  // The Redis adapter lands with the /sync work (issue 3); until then every mode fans out in-process.
  const bus: Bus = createMemoryBus(replicaId)
  fastify.decorate('replicaId', replicaId)
  fastify.decorate('bus', bus)
  fastify.addHook('onClose', async () => { await bus.close() })
}, { name: 'bus', dependencies: ['config', 'redis'] })
