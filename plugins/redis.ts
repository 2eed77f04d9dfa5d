import fastifyRedis from '@fastify/redis'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'

/** How long a polite QUIT may take at shutdown before the connection is simply dropped. */
const QUIT_TIMEOUT_MS = 1000

/**
 * Closes a Redis client whatever state Redis is in: QUIT when it answers (bounded: a frozen
 * Redis never replies), then drop the socket and stop reconnecting. Never throws: a client that
 * cannot say goodbye must not turn a clean shutdown into exit 1 (QUIT on a client with no
 * offline queue and no connection rejects with "Stream isn't writeable").
 */
export async function closeRedis (client: Redis): Promise<void> {
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      client.quit().catch(() => {}),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, QUIT_TIMEOUT_MS) })
    ])
    clearTimeout(timer)
  }
  client.disconnect()
}

/**
 * Connects to Redis when REDIS_URL is set and hands the client to @fastify/redis (which waits
 * for it at boot and decorates `fastify.redis`); this plugin closes it, with closeRedis, because
 * @fastify/redis's own QUIT throws when Redis is down. Commands fail fast while Redis is away
 * (no offline queue) so callers can fall back instead of hanging; ioredis keeps reconnecting in
 * the background.
 */
export default fp(async function redisPlugin (fastify) {
  const { REDIS_URL, REDIS_PASSWORD } = fastify.config
  if (!REDIS_URL) return
  const client = new Redis(REDIS_URL, {
    ...(REDIS_PASSWORD ? { password: REDIS_PASSWORD } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000)
  })
  fastify.addHook('onClose', () => closeRedis(client))
  await fastify.register(fastifyRedis, { client, closeClient: false })
  // ioredis emits 'error' on every failed reconnect; without a listener node would crash.
  let down = false
  fastify.redis.on('error', (err: Error) => {
    if (!down) fastify.log.warn({ err }, 'redis connection lost; retrying in the background')
    down = true
  })
  fastify.redis.on('ready', () => {
    if (down) fastify.log.info('redis connection restored')
    down = false
  })
}, { name: 'redis', dependencies: ['config'] })

/** The shared Redis client, or null on the embedded default. */
export function redisOf (fastify: FastifyInstance): Redis | null {
  return fastify.hasDecorator('redis') ? fastify.redis as unknown as Redis : null
}
