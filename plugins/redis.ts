import fastifyRedis from '@fastify/redis'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'

/**
 * Connects to Redis through @fastify/redis when REDIS_URL is set (it closes the client on
 * shutdown). Commands fail fast while Redis is away (no offline queue) so callers can fall
 * back instead of hanging; ioredis keeps reconnecting in the background.
 */
export default fp(async function redisPlugin (fastify) {
  const { REDIS_URL, REDIS_PASSWORD } = fastify.config
  if (!REDIS_URL) return
  await fastify.register(fastifyRedis, {
    url: REDIS_URL,
    ...(REDIS_PASSWORD ? { password: REDIS_PASSWORD } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    closeClient: true
  })
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
