import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import { createMemoryBus } from '../src/bus/memory.js'
import { channelForSchema } from '../src/bus/notify-payload.js'
import { connectPostgresBus } from '../src/bus/postgres.js'
import { connectRedisBus } from '../src/bus/redis.js'
import { shardedPublisher, shardedReceiver, subscriberReceiver, type ChannelReceiver } from '../src/bus/redis-channels.js'
import type { Bus } from '../src/bus/types.js'
import { isCluster } from '../src/redis-client.js'
import { closeRedis, redisOf } from './redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    bus: Bus
    /** This process's id on the bus. */
    replicaId: string
  }
}

/**
 * The bus config.bus names (src/config.ts says which and why): Redis pub/sub when Redis is
 * configured (SUBSCRIBE on a connection of its own with one node or Sentinel, sharded pub/sub on
 * a Cluster); PostgreSQL LISTEN/NOTIFY on the store's database when only DATABASE_URL is set;
 * in-process on the embedded default.
 */
export default fp(async function busPlugin (fastify) {
  const replicaId = randomUUID()
  const config = fastify.config
  const log = fastify.log.child({ component: 'bus' })
  const redis = redisOf(fastify)
  let bus: Bus
  let channel: string | undefined
  if (config.bus.kind === 'redis' && redis) {
    channel = `${config.REDIS_KEY_PREFIX}bus`
    const connectionName = `${replicaId}:bus`
    let receiver: ChannelReceiver
    let send: ((payload: string) => Promise<unknown>) | undefined
    if (isCluster(redis)) {
      receiver = shardedReceiver(redis, channel, { connectionName })
      send = shardedPublisher(redis, channel)
    } else {
      // SUBSCRIBE takes a connection of its own. It queues commands while Redis is away and the
      // receiver resubscribes itself after a reconnect (so the bus knows when to tell subscribers
      // to resync). Behind Sentinel the duplicate asks the sentinels for the primary, like the original.
      const subscriber = redis.duplicate({ lazyConnect: true, autoResubscribe: false, enableOfflineQueue: true, maxRetriesPerRequest: null, enableAutoPipelining: false, connectionName })
      fastify.addHook('onClose', () => closeRedis(subscriber))
      receiver = subscriberReceiver(subscriber, channel)
    }
    bus = await connectRedisBus({ publisher: redis, receiver, send, channel, origin: replicaId, log })
  } else if (config.bus.kind === 'postgres' && config.DATABASE_URL) {
    // The store's write transactions take the publish; the bus opens its own listening connection.
    channel = channelForSchema(config.DATABASE_SCHEMA)
    bus = await connectPostgresBus({ connectionString: config.DATABASE_URL, store: fastify.store, channel, origin: replicaId, log })
  } else {
    bus = createMemoryBus(replicaId)
  }
  fastify.decorate('replicaId', replicaId)
  fastify.decorate('bus', bus)
  const lag = fastify.metrics.histogram({ name: 'bus_pubsub_lag_seconds', help: 'From publish on any replica to receipt on this one', buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] })
  const offLag = bus.subscribe((m) => lag.observe(Math.max(0, Date.now() - m.publishedAt) / 1000))
  // Registered after the subscriber's hook, so it runs first (onClose hooks run in reverse order).
  fastify.addHook('onClose', async () => {
    offLag()
    await bus.close()
  })
  fastify.log.info({ bus: bus.kind, reason: config.bus.reason, channel, replicaId }, `bus ready: ${bus.kind}`)
}, { name: 'bus', dependencies: ['config', 'redis', 'store', 'metrics'] })
