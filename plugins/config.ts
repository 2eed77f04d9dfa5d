import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/** Hands the validated config down, typed, to every plugin and route. */
export default fp<{ config: Config }>(async function configPlugin (fastify, opts) {
  fastify.decorate('config', opts.config)
}, { name: 'config' })
