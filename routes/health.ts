import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { redisOf } from '../plugins/redis.js'
import { withTimeout } from '../src/timeout.js'

const Check = Type.Union([Type.Literal('ok'), Type.Literal('down'), Type.Literal('absent')])
const Readiness = Type.Object({
  /** `draining`: shutting down (SIGTERM); everything still works, but route new work elsewhere. */
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable'), Type.Literal('draining')]),
  checks: Type.Object({ store: Check, redis: Check })
})

async function probe (fn: () => Promise<unknown>, timeoutMs = 2000): Promise<'ok' | 'down'> {
  try {
    await withTimeout(fn(), timeoutMs, 'readiness probe')
    return 'ok'
  } catch {
    return 'down'
  }
}

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // Probes hit these every few seconds: their request lines would drown the log.
  fastify.get('/healthz', {
    logLevel: 'warn',
    config: { rateLimit: false },
    schema: { tags: ['health'], summary: 'Liveness: the process is up', response: { 200: Type.Object({ status: Type.Literal('ok') }) } }
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/readyz', {
    logLevel: 'warn',
    config: { rateLimit: false },
    schema: { tags: ['health'], summary: 'Readiness: store and Redis reachable, not draining (503 naming what is down, or status draining)', response: { 200: Readiness, 503: Readiness } }
  }, async (request, reply) => {
    const redis = redisOf(fastify)
    const [store, redisState] = await Promise.all([
      // A LISTEN/NOTIFY bus lives on the store's database: a replica that cannot listen there
      // would serve what it cached while other replicas change it, so it counts as the store.
      probe(() => Promise.all([fastify.store.ping(), fastify.bus.kind === 'postgres' ? fastify.bus.ping() : null])),
      // The shared client and the bus's own subscriber connection: either down stops live fan-out.
      redis ? probe(() => Promise.all([redis.ping(), fastify.bus.ping()])) : Promise.resolve('absent' as const)
    ])
    const ok = store === 'ok' && redisState !== 'down'
    const draining = fastify.isDraining()
    reply.code(ok && !draining ? 200 : 503)
    return { status: draining ? 'draining' as const : ok ? 'ok' as const : 'unavailable' as const, checks: { store, redis: redisState } }
  })
}

export default healthRoutes
