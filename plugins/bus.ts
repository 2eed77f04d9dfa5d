import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import { createMemoryBus } from '../src/bus/memory.js'
import { connectRedisBus } from '../src/bus/redis.js'
import type { Bus } from '../src/bus/types.js'
import { closeRedis, redisOf } from './redis.js'

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
  const redis = redisOf(fastify)
  let bus: Bus
  if (redis) {
    // SUBSCRIBE takes a connection of its own. It queues commands while Redis is away and the
    // adapter resubscribes itself after a reconnect (so it knows when to tell subscribers to resync).
    const subscriber = redis.duplicate({ lazyConnect: true, autoResubscribe: false, enableOfflineQueue: true, maxRetriesPerRequest: null, connectionName: `${replicaId}:bus` })
    fastify.addHook('onClose', () => closeRedis(subscriber))
    bus = await connectRedisBus({
      publisher: redis,
      subscriber,
      channel: `${fastify.config.REDIS_KEY_PREFIX}bus`,
      origin: replicaId,
      log: fastify.log.child({ component: 'bus' })
    })
  } else {
    bus = createMemoryBus(replicaId)
  }
  fastify.decorate('replicaId', replicaId)
  fastify.decorate('bus', bus)
  // Registered after the subscriber's hook, so it runs first (onClose hooks run in reverse order).
  fastify.addHook('onClose', async () => { await bus.close() })
  fastify.log.info({ bus: bus.kind, replicaId }, 'bus ready')
}, { name: 'bus', dependencies: ['config', 'redis'] })
