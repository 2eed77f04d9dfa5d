import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { createLogoCache, type CacheStats, type LogoCache } from '../src/cache/logo-cache.js'
import { createRedisL2 } from '../src/cache/redis-l2.js'
import { createCounters } from '../src/cache/types.js'
import type { Metrics } from './metrics.js'
import { redisOf } from './redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The two-level cache (SyncCache) the logo service reads and writes through. */
    syncCache: LogoCache
    /**
     * A snapshot of the cache counters, for metrics: hits/misses per level (`l1`, `l2`, with
     * `staleHits` served while revalidating), `l2.errors`, `store.reads` (by kind), sizes.
     */
    cacheStats: () => CacheStats
  }
}

const CacheKey = Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,200}$' })

/**
 * SyncCache: L1 in this process, L2 on Redis when Redis is configured, then the store. Applies
 * every bus event to L1 by version; forgets L1 when the bus reports it may have lost messages.
 */
export default fp(async function cachePlugin (fastify) {
  const config = fastify.config
  const log = fastify.log.child({ component: 'cache' })
  const counters = createCounters()
  const redis = redisOf(fastify)
  const ttlMs = config.CACHE_TTL_MS
  const l2 = redis
    ? createRedisL2({
      redis,
      // One hash tag for the whole cache namespace, so its scripts and MGETs never span slots on a
      // Cluster (the same layout everywhere, so what runs on one node is what runs on a Cluster).
      prefix: `{${config.REDIS_KEY_PREFIX}cache}:`,
      ttlMs,
      floorTtlMs: ttlMs > 0 ? Math.max(ttlMs + config.CACHE_STALE_MS, 60_000) : 0,
      timeoutMs: config.CACHE_L2_TIMEOUT_MS,
      counters,
      log
    })
    : null

  // A failing background refresh is logged at most every 30 s, not per request.
  let refreshLoggedAt = -Infinity
  const cache = createLogoCache({
    store: fastify.store,
    l2,
    strategy: config.CACHE_STRATEGY,
    ttlMs,
    staleMs: config.CACHE_STALE_MS,
    maxEntries: config.CACHE_MAX_ENTRIES,
    maxBytes: config.CACHE_MAX_BYTES,
    counters,
    onRefreshError (err, key) {
      if (performance.now() - refreshLoggedAt < 30_000) return
      refreshLoggedAt = performance.now()
      log.warn({ err, key }, 'cache refresh failed; serving the stale value until it expires')
    }
  })

  fastify.decorate('syncCache', cache)
  fastify.decorate('cacheStats', () => cache.stats())
  declareMetrics(fastify.metrics, () => cache.stats())

  // Other replicas resync from L2 after a lost publish: let them only once our missed writes are in.
  const releaseNotice = l2 ? fastify.bus.holdResyncNotice(() => l2.settled()) : () => {}
  // Never let a cache fault stop the bus from reaching the handlers after this one (the sync hub).
  const unsubscribe = fastify.bus.subscribe((message) => {
    try {
      cache.apply(message.event, message.origin === fastify.replicaId)
    } catch (err) {
      log.error({ err, event: message.event.kind }, 'cache could not apply a bus event; forgetting L1')
      cache.resync()
    }
  })
  const unresync = fastify.bus.onResync(() => cache.resync())
  fastify.addHook('onClose', async () => {
    releaseNotice()
    unsubscribe()
    unresync()
    cache.close()
  })

  if (config.CACHE_DEBUG_ROUTES && !config.isProduction) {
    fastify.get('/_debug/cache', {
      config: { rateLimit: false },
      schema: { hide: true, response: { 200: Type.Unknown() } }
    }, async () => cache.stats())
    fastify.get('/_debug/cache/entry', {
      config: { rateLimit: false },
      schema: {
        hide: true,
        querystring: Type.Object({ key: CacheKey }, { additionalProperties: false }),
        response: { 200: Type.Unknown() }
      }
    }, async (request) => cache.inspect((request.query as { key: string }).key))
    log.warn('cache debug routes enabled (/_debug/cache); never in production')
  }
  log.info({ strategy: config.CACHE_STRATEGY, ttlMs, l2: l2 !== null }, 'cache ready')
}, { name: 'cache', dependencies: ['config', 'redis', 'store', 'bus', 'metrics'] })

/** The cache's counters, exported as they stand at scrape time (they live in the cache). */
function declareMetrics (metrics: Metrics, stats: () => CacheStats): void {
  const mirrored = (name: string, help: string, read: (s: CacheStats) => Record<string, number>) => metrics.counter({
    name,
    help,
    labelNames: ['level'],
    collect () {
      this.reset()
      for (const [level, value] of Object.entries(read(stats()))) this.inc({ level }, value)
    }
  })
  mirrored('cache_hits_total', 'Cache hits by level (l1 includes stale hits served while revalidating)', (s) => ({ l1: s.l1.hits + s.l1.staleHits, l2: s.l2.hits }))
  mirrored('cache_misses_total', 'Cache misses by level', (s) => ({ l1: s.l1.misses, l2: s.l2.misses }))
  mirrored('cache_errors_total', 'L2 (Redis) cache errors', (s) => ({ l2: s.l2.errors }))
  metrics.counter({
    name: 'store_reads_total',
    help: 'Reads that reached the store through the cache',
    collect () {
      this.reset()
      this.inc(stats().store.reads)
    }
  })
}
