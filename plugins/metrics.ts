import { createServer, type Server } from 'node:http'
import { CLOSE_RULES } from '@logo-sync/client/protocol'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { CacheStats } from '../src/cache/logo-cache.js'
import type { SyncStats } from '../src/sync/stats.js'

/** Every metric name starts with this, Centrifugo-style: `<namespace>_<subsystem>_<name>`. */
export const METRIC_PREFIX = 'logo_sync_'

/**
 * Close codes of the shared vocabulary get their own label value; any other (a client may pick
 * any 3000-4999) is 'other', so the label set stays bounded.
 */
const KNOWN_CLOSE_CODES = new Set(Object.keys(CLOSE_RULES).map(Number))

/** Where gauges and cache counters read their values at scrape time (set once plugins are ready). */
interface Sources {
  sync?: SyncStats
  cache?: () => CacheStats
}

/** Builds the app's metrics on a registry of its own (several apps may share a test process). */
function createMetrics (register: Registry, sources: Sources) {
  const p = METRIC_PREFIX
  const registers = [register]
  /** A counter whose total lives elsewhere (the cache's counters): copied in at scrape time. */
  const mirrored = (name: string, help: string, read: (s: CacheStats) => Record<string, number>) => new Counter({
    name,
    help,
    labelNames: ['level'],
    registers,
    collect () {
      if (!sources.cache) return
      this.reset()
      for (const [level, value] of Object.entries(read(sources.cache()))) this.inc({ level }, value)
    }
  })
  const syncGauge = (name: string, help: string, read: (s: SyncStats) => number) => new Gauge({
    name,
    help,
    registers,
    collect () { this.set(sources.sync ? read(sources.sync) : 0) }
  })
  return {
    register,
    httpDuration: new Histogram({ name: `${p}http_request_duration_seconds`, help: 'REST request duration by route and status', labelNames: ['method', 'route', 'status_code'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers }),
    rateLimited: new Counter({ name: `${p}http_rate_limit_refusals_total`, help: 'Requests refused by a rate limit, by scope (ip, vote, sync, sync_connections)', labelNames: ['scope'], registers }),
    authFailures: new Counter({ name: `${p}auth_failures_total`, help: 'Refused credentials, by reason', labelNames: ['reason'], registers }),
    syncConnections: syncGauge(`${p}sync_num_connections`, 'Open /sync connections', (s) => s.connections),
    syncSubscriptions: syncGauge(`${p}sync_num_subscriptions`, 'Channel subscriptions over all /sync connections', (s) => s.subscriptions),
    syncChannels: syncGauge(`${p}sync_num_channels`, 'Channels with at least one local subscriber', (s) => s.channels),
    framesIn: new Counter({ name: `${p}sync_frames_received_total`, help: 'Frames received from /sync clients, by op', labelNames: ['op'], registers }),
    // Copied from SyncStats at scrape time, not counted here per frame: a broadcast to 10,000
    // subscribers would otherwise be 20,000 prom-client calls (≈ 6 % of the fan-out's CPU).
    framesOut: new Counter({
      name: `${p}sync_frames_sent_total`,
      help: 'Frames sent to /sync clients, by type',
      labelNames: ['type'],
      registers,
      collect () {
        this.reset()
        if (!sources.sync) return
        for (const [type, value] of Object.entries(sources.sync.framesOutByType)) this.inc({ type }, value)
      }
    }),
    bytesOut: new Counter({
      name: `${p}sync_bytes_sent_total`,
      help: 'Bytes sent to /sync clients',
      registers,
      collect () {
        this.reset()
        if (sources.sync) this.inc(sources.sync.bytesOut)
      }
    }),
    broadcastDuration: new Histogram({ name: `${p}sync_broadcast_duration_seconds`, help: 'Time to fan one change out to local subscribers', buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5], registers }),
    deliveryLatency: new Histogram({ name: `${p}sync_delivery_latency_seconds`, help: 'From bus publish (any replica) to delivery to local subscribers', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers }),
    disconnects: new Counter({ name: `${p}sync_disconnects_total`, help: '/sync disconnects by close code', labelNames: ['code'], registers }),
    resyncs: new Counter({ name: `${p}sync_resyncs_total`, help: 'Subscribes by since outcome (current: nothing sent; stale: state sent; none: no since or a whole channel)', labelNames: ['outcome'], registers }),
    syncErrors: new Counter({ name: `${p}sync_errors_total`, help: 'Protocol error frames sent, by code', labelNames: ['code'], registers }),
    cacheHits: mirrored(`${p}cache_hits_total`, 'Cache hits by level (l1 includes stale hits served while revalidating)', (s) => ({ l1: s.l1.hits + s.l1.staleHits, l2: s.l2.hits })),
    cacheMisses: mirrored(`${p}cache_misses_total`, 'Cache misses by level', (s) => ({ l1: s.l1.misses, l2: s.l2.misses })),
    cacheErrors: mirrored(`${p}cache_errors_total`, 'L2 (Redis) cache errors', (s) => ({ l2: s.l2.errors })),
    storeReads: new Counter({
      name: `${p}store_reads_total`,
      help: 'Reads that reached the store through the cache',
      registers,
      collect () { if (sources.cache) { this.reset(); this.inc(sources.cache().store.reads) } }
    }),
    busLag: new Histogram({ name: `${p}bus_pubsub_lag_seconds`, help: 'From publish on any replica to receipt on this one', buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers })
  }
}

export type Metrics = ReturnType<typeof createMetrics>

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/**
 * Prometheus metrics with prom-client on a registry per app, served at GET /metrics
 * (METRICS_ENABLED; METRICS_TOKEN, when set, is required as a bearer token).
 * Other plugins record into `fastify.metrics`; this one records HTTP, auth and rate limits.
 */
export default fp(async function metricsPlugin (fastify) {
  const register = new Registry()
  collectDefaultMetrics({ register, prefix: METRIC_PREFIX })
  const sources: Sources = {}
  const metrics = createMetrics(register, sources)
  fastify.decorate('metrics', metrics)

  fastify.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url
    if (route === undefined || route === '/metrics') return
    metrics.httpDuration.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
  })
  fastify.onAuthFailure.add((reason) => metrics.authFailures.inc({ reason }))
  fastify.onRateLimited.add((scope) => metrics.rateLimited.inc({ scope }))
  // The sync hub and the cache register after this plugin: hook into them once everything is ready.
  let offBus = () => {}
  fastify.addHook('onClose', async () => offBus())
  fastify.addHook('onReady', async () => {
    offBus = fastify.bus.subscribe((m) => metrics.busLag.observe(Math.max(0, Date.now() - m.publishedAt) / 1000))
    if (fastify.hasDecorator('cacheStats')) sources.cache = () => fastify.cacheStats()
    if (fastify.hasDecorator('syncStats')) {
      sources.sync = fastify.syncStats
      fastify.syncStats.observers.add({
        frameIn: (op) => metrics.framesIn.inc({ op }),
        disconnect: (code) => metrics.disconnects.inc({ code: KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other' }),
        resync: (outcome) => metrics.resyncs.inc({ outcome }),
        rateLimited: () => metrics.rateLimited.inc({ scope: 'sync' }),
        error: (code) => metrics.syncErrors.inc({ code }),
        fanout: (seconds) => metrics.broadcastDuration.observe(seconds),
        delivery: (seconds) => metrics.deliveryLatency.observe(seconds)
      })
    }
  })

  if (!fastify.config.METRICS_ENABLED) return
  const { METRICS_TOKEN, METRICS_PORT, HOST } = fastify.config
  const required = METRICS_TOKEN ? `Bearer ${METRICS_TOKEN}` : null
  // Rendering walks every metric (and collects the default process ones): concurrent scrapes
  // share one rendering instead of each paying for it.
  let rendering: Promise<string> | null = null
  const render = () => {
    rendering ??= register.metrics().finally(() => { rendering = null })
    return rendering
  }

  if (METRICS_PORT !== undefined) {
    // The usual Prometheus layout: metrics on a port of their own, which the network keeps
    // away from the public (only the scraper reaches it), and nothing of them on the app's port.
    const server = await listenForScrapes(METRICS_PORT, HOST, required, render, register.contentType)
    fastify.addHook('onClose', () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
    fastify.log.info({ port: METRICS_PORT, host: HOST }, 'metrics listening on their own port')
    return
  }
  // On the app's port /metrics is a route like any other: it counts against the per-IP limit
  // (RATE_LIMIT_MAX per minute; a scrape every 15 s uses 4 of them), so it cannot be used to
  // burn CPU for free. Load shedding still lets it through, to show the pressure.
  fastify.get('/metrics', {
    logLevel: 'warn', // scraped every few seconds
    schema: { tags: ['operations'], summary: 'Prometheus metrics (text format)', hide: false }
  }, async (request, reply) => {
    if (required && request.headers.authorization !== required) throw fastify.httpErrors.unauthorized('Metrics need the METRICS_TOKEN bearer token')
    reply.type(register.contentType)
    return render()
  })
}, { name: 'metrics', dependencies: ['config', 'auth', 'rate-limit', 'bus'] })

/** A bare HTTP server answering GET /metrics only (METRICS_PORT). Resolves once it listens. */
function listenForScrapes (port: number, host: string, required: string | null, render: () => Promise<string>, contentType: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
      return
    }
    if (required && req.headers.authorization !== required) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('metrics need the METRICS_TOKEN bearer token\n')
      return
    }
    render().then(
      (text) => { res.writeHead(200, { 'content-type': contentType }).end(text) },
      () => { res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics failed\n') }
    )
  })
  server.keepAliveTimeout = 65_000 // longer than a scrape interval: one connection per scraper
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve(server) })
  })
}
