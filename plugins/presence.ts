import fp from 'fastify-plugin'
import { subscriberReceiver, shardedReceiver, type ChannelReceiver } from '../src/bus/redis-channels.js'
import { createMemoryPresence } from '../src/presence/memory.js'
import { connectPostgresPresence } from '../src/presence/postgres.js'
import { presenceTtlMs } from '../src/presence/presence.js'
import { connectRedisPresence } from '../src/presence/redis.js'
import type { PresenceBackend } from '../src/presence/types.js'
import { isCluster } from '../src/redis-client.js'
import { closeRedis, redisOf } from './redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Where each replica's presence count is kept for the others (src/presence). */
    presenceBackend: PresenceBackend
  }
}

/**
 * The presence backend, on whatever carries the bus (config.bus): Redis (a subscription of its
 * own for the views: SUBSCRIBE on a duplicate connection, or sharded on a Cluster); PostgreSQL
 * alone (heartbeat rows and NOTIFY); in-process on the embedded default.
 * Entries live twice SYNC_HEARTBEAT_MS without a refresh (src/presence/presence.ts).
 */
export default fp(async function presencePlugin (fastify) {
  const config = fastify.config
  const ttlMs = presenceTtlMs(config.SYNC_HEARTBEAT_MS)
  const log = fastify.log.child({ component: 'presence' })
  const redis = redisOf(fastify)
  let backend: PresenceBackend
  if (config.bus.kind === 'redis' && redis) {
    const connectionName = `${fastify.replicaId}:presence`
    let receiver: (channel: string) => ChannelReceiver
    if (isCluster(redis)) {
      receiver = (channel) => shardedReceiver(redis, channel, { connectionName })
    } else {
      const subscriber = redis.duplicate({ lazyConnect: true, autoResubscribe: false, enableOfflineQueue: true, maxRetriesPerRequest: null, enableAutoPipelining: false, connectionName })
      fastify.addHook('onClose', () => closeRedis(subscriber))
      receiver = (channel) => subscriberReceiver(subscriber, channel)
    }
    backend = await connectRedisPresence({ client: redis, receiver, sharded: isCluster(redis), prefix: config.REDIS_KEY_PREFIX, topic: 'logos', ttlMs, log })
  } else if (config.bus.kind === 'postgres' && config.DATABASE_URL) {
    backend = await connectPostgresPresence({ connectionString: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, topic: 'logos', ttlMs, replicaId: fastify.replicaId, log })
  } else {
    backend = createMemoryPresence()
  }
  fastify.decorate('presenceBackend', backend)
  // Registered after the subscriber's hook, so it runs first (onClose hooks run in reverse order).
  fastify.addHook('onClose', () => backend.close())
  log.info({ presence: backend.kind, ttlMs }, 'presence ready')
}, { name: 'presence', dependencies: ['config', 'redis', 'bus'] })
