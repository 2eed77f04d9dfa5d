import fastifyRateLimit, { type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import type { preHandlerHookHandler } from 'fastify'
import { createSharedLimiter } from '../src/rate-limit/shared-store.js'
import { redisOf } from './redis.js'

/**
 * ip, vote: the REST limits here; sync_connections: SYNC_MAX_CONNECTIONS_PER_IP (routes/sync.ts);
 * sync: frames over SYNC_RATE_LIMIT on a /sync connection (the hub).
 */
export type RateLimitScope = 'ip' | 'vote' | 'sync_connections' | 'sync'

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler (after authenticate): VOTE_RATE_LIMIT votes per user per minute. */
    voteRateLimit: preHandlerHookHandler
    /** Counts a refusal by a limit (`http_rate_limit_refusals_total{scope}`): every limit reports here. */
    rateLimited: (scope: RateLimitScope) => void
  }
}

/**
 * A global per-IP limit (RATE_LIMIT_MAX per minute) and a tighter per-user limit on voting.
 * In-process on the embedded default. With Redis (any topology: the lease script takes one key)
 * a limit holds across replicas without a Redis round trip per request: each replica leases a
 * tenth of a key's budget from Redis at a time and spends it locally (src/rate-limit/shared-store.ts:
 * at most the limit plus one request per replica in a window, since a key's first request on a
 * replica does not wait for its lease; a client moving between replicas may be refused a little
 * early). A request is never failed because Redis is away: the limit then holds per replica.
 */
export default fp(async function rateLimitPlugin (fastify) {
  const redis = redisOf(fastify)
  const refusals = fastify.metrics.counter({ name: 'http_rate_limit_refusals_total', help: 'Requests refused by a rate limit, by scope (ip, vote, sync, sync_connections)', labelNames: ['scope'] })
  const rateLimited = (scope: RateLimitScope) => refusals.inc({ scope })
  fastify.decorate('rateLimited', rateLimited)
  let store: FastifyRateLimitStoreCtor | null = null
  if (redis) {
    const log = fastify.log.child({ component: 'rate-limit' })
    store = createSharedLimiter({
      redis,
      prefix: `${fastify.config.REDIS_KEY_PREFIX}rl:`,
      onError: (err) => log.warn({ err }, 'rate limits cannot reach Redis: each replica holds them on its own until it answers'),
      onRecovered: () => log.info('rate limits reach Redis again')
    }).Store
  }
  await fastify.register(fastifyRateLimit, {
    global: true,
    max: fastify.config.RATE_LIMIT_MAX,
    timeWindow: 60_000,
    skipOnError: true,
    ...(store ? { store } : {}),
    onExceeded: () => rateLimited('ip')
  })
  // A second limiter on the vote routes. The plugin's own per-route hook would replace the
  // per-IP one (and it skips once a limiter ran), so this one is checked explicitly.
  const checkVotes = fastify.createRateLimit({
    max: fastify.config.VOTE_RATE_LIMIT,
    timeWindow: 60_000,
    keyGenerator: (request) => `vote:${request.user?.sub ?? request.ip}`
  })
  fastify.decorate('voteRateLimit', async function voteRateLimit (request, reply) {
    const limit = await checkVotes(request)
    if (limit.isAllowed || !limit.isExceeded) return
    rateLimited('vote')
    reply.header('retry-after', limit.ttlInSeconds)
    reply.header('x-ratelimit-limit', limit.max)
    reply.header('x-ratelimit-remaining', 0)
    throw fastify.httpErrors.tooManyRequests(`Vote rate limit exceeded: at most ${limit.max} votes per minute; retry in ${limit.ttlInSeconds} s`)
  } as preHandlerHookHandler)
}, { name: 'rate-limit', dependencies: ['config', 'redis', 'metrics'] })
