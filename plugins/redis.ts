import fastifyRedis from '@fastify/redis'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { redisConfigured } from '../src/config.js'
import { createRedisClient, GOODBYE_TIMEOUT_MS, isCluster, type RedisClient } from '../src/redis-client.js'
import { settleWithin } from '../src/timeout.js'

/**
 * Closes a Redis client (one node, Sentinel-managed or Cluster) whatever state Redis is in: QUIT
 * when it answers (bounded: a frozen Redis never replies), then drop the socket and stop
 * reconnecting. Never throws: a client that cannot say goodbye must not turn a clean shutdown
 * into exit 1 (QUIT on a client with no offline queue and no connection rejects with "Stream
 * isn't writeable").
 */
export async function closeRedis (client: RedisClient): Promise<void> {
  try {
    // Inside a promise: a QUIT that throws at once (rather than rejecting) is bounded alike.
    if (client.status === 'ready') await settleWithin(Promise.resolve().then(() => client.quit()), GOODBYE_TIMEOUT_MS)
  } finally {
    client.disconnect()
  }
}

/**
 * Connects to Redis when one is configured (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES)
 * and hands the client to @fastify/redis (which waits for it at boot and decorates
 * `fastify.redis`); this plugin closes it, with closeRedis, because @fastify/redis's own QUIT
 * throws when Redis is down. Commands fail fast while Redis is away (no offline queue) so callers
 * can fall back instead of hanging; ioredis keeps reconnecting in the background.
 */
export default fp(async function redisPlugin (fastify) {
  const config = fastify.config
  if (!redisConfigured(config)) return
  const client = createRedisClient(config.redis!, {
    password: config.REDIS_PASSWORD,
    sentinelPassword: config.REDIS_SENTINEL_PASSWORD
  })
  fastify.addHook('onClose', () => closeRedis(client))
  // @fastify/redis types its decorator as a single-node client; redisOf() gives the real type.
  await fastify.register(fastifyRedis, { client: client as never, closeClient: false })
  // ioredis emits 'error' on every failed reconnect; without a listener node would crash.
  let down = false
  client.on('error', (err: Error) => {
    if (!down) fastify.log.warn({ err, mode: config.redis!.mode }, 'redis connection lost; retrying in the background')
    down = true
  })
  client.on('ready', () => {
    if (down) fastify.log.info('redis connection restored')
    down = false
  })
  // A Cluster connects to each primary on its first command, and without an offline queue the
  // commands sent meanwhile take a detour through MOVED: connect to every primary up front.
  if (isCluster(client)) await Promise.all(client.nodes('master').map((node) => node.ping().catch(() => {})))
}, { name: 'redis', dependencies: ['config'] })

/** The shared Redis client (single node, Sentinel-managed, or Cluster), or null on the embedded default. */
export function redisOf (fastify: FastifyInstance): RedisClient | null {
  return fastify.hasDecorator('redis') ? fastify.redis as unknown as RedisClient : null
}
