import fastifyRateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import type { preHandlerHookHandler } from 'fastify'
import { redisOf } from './redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler (after authenticate): VOTE_RATE_LIMIT votes per user per minute. */
    voteRateLimit: preHandlerHookHandler
    onRateLimited: Set<(scope: 'ip' | 'vote') => void>
  }
}

/**
 * A global per-IP limit (RATE_LIMIT_MAX per minute) and a tighter per-user limit on voting.
 * Backed by Redis when REDIS_URL is set so a limit holds across replicas; in-process otherwise.
 * If Redis is away the limiter lets requests through (skipOnError) rather than failing them.
 */
export default fp(async function rateLimitPlugin (fastify) {
  const redis = redisOf(fastify)
  const listeners = new Set<(scope: 'ip' | 'vote') => void>()
  fastify.decorate('onRateLimited', listeners)
  await fastify.register(fastifyRateLimit, {
    global: true,
    max: fastify.config.RATE_LIMIT_MAX,
    timeWindow: 60_000,
    skipOnError: true,
    ...(redis ? { redis, nameSpace: `${fastify.config.REDIS_KEY_PREFIX}rl:` } : {}),
    onExceeded: () => { for (const l of listeners) l('ip') }
  })
  fastify.decorate('voteRateLimit', fastify.rateLimit({
    max: fastify.config.VOTE_RATE_LIMIT,
    timeWindow: 60_000,
    keyGenerator: (request) => `vote:${request.user?.sub ?? request.ip}`,
    onExceeded: () => { for (const l of listeners) l('vote') }
  }))
}, { name: 'rate-limit', dependencies: ['config', 'redis'] })
