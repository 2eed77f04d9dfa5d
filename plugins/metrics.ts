import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** Every metric name starts with this, Centrifugo-style: `<namespace>_<subsystem>_<name>`. */
export const METRIC_PREFIX = 'logo_sync_'

/** Builds the app's metrics on a registry of its own (several apps may share a test process). */
function createMetrics (register: Registry) {
  const p = METRIC_PREFIX
  return {
    register,
    httpDuration: new Histogram({ name: `${p}http_request_duration_seconds`, help: 'REST request duration by route and status', labelNames: ['method', 'route', 'status_code'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [register] }),
    rateLimited: new Counter({ name: `${p}http_rate_limit_refusals_total`, help: 'Requests refused by a rate limit, by scope (ip, vote, sync)', labelNames: ['scope'], registers: [register] }),
    authFailures: new Counter({ name: `${p}auth_failures_total`, help: 'Refused credentials, by reason', labelNames: ['reason'], registers: [register] }),
    syncConnections: new Gauge({ name: `${p}sync_num_connections`, help: 'Open /sync connections', registers: [register] }),
    syncSubscriptions: new Gauge({ name: `${p}sync_num_subscriptions`, help: 'Channel subscriptions over all /sync connections', registers: [register] }),
    syncChannels: new Gauge({ name: `${p}sync_num_channels`, help: 'Channels with at least one local subscriber', registers: [register] }),
    framesIn: new Counter({ name: `${p}sync_frames_received_total`, help: 'Frames received from /sync clients, by op', labelNames: ['op'], registers: [register] }),
    framesOut: new Counter({ name: `${p}sync_frames_sent_total`, help: 'Frames sent to /sync clients, by type', labelNames: ['type'], registers: [register] }),
    bytesOut: new Counter({ name: `${p}sync_bytes_sent_total`, help: 'Bytes sent to /sync clients', registers: [register] }),
    broadcastDuration: new Histogram({ name: `${p}sync_broadcast_duration_seconds`, help: 'Time to fan one change out to local subscribers', buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5], registers: [register] }),
    deliveryLatency: new Histogram({ name: `${p}sync_delivery_latency_seconds`, help: 'From bus publish to delivery to local subscribers', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [register] }),
    disconnects: new Counter({ name: `${p}sync_disconnects_total`, help: '/sync disconnects by close code', labelNames: ['code'], registers: [register] }),
    resyncs: new Counter({ name: `${p}sync_resyncs_total`, help: 'Subscribes by since outcome (current: nothing sent; stale: state sent; none: no since)', labelNames: ['outcome'], registers: [register] }),
    cacheHits: new Counter({ name: `${p}cache_hits_total`, help: 'Cache hits by level', labelNames: ['level'], registers: [register] }),
    cacheMisses: new Counter({ name: `${p}cache_misses_total`, help: 'Cache misses by level', labelNames: ['level'], registers: [register] }),
    storeReads: new Counter({ name: `${p}store_reads_total`, help: 'Reads that reached the store', registers: [register] }),
    busLag: new Histogram({ name: `${p}bus_pubsub_lag_seconds`, help: 'From publish on any replica to receipt on this one', buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [register] })
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
  const metrics = createMetrics(register)
  fastify.decorate('metrics', metrics)

  fastify.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url
    if (route === undefined || route === '/metrics') return
    metrics.httpDuration.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
  })
  fastify.onAuthFailure.add((reason) => metrics.authFailures.inc({ reason }))
  fastify.onRateLimited.add((scope) => metrics.rateLimited.inc({ scope }))
  fastify.addHook('onReady', async () => { fastify.bus.subscribe((m) => metrics.busLag.observe(Math.max(0, Date.now() - m.publishedAt) / 1000)) })

  if (!fastify.config.METRICS_ENABLED) return
  const required = fastify.config.METRICS_TOKEN ? `Bearer ${fastify.config.METRICS_TOKEN}` : null
  fastify.get('/metrics', {
    config: { rateLimit: false },
    schema: { tags: ['operations'], summary: 'Prometheus metrics (text format)', hide: false }
  }, async (request, reply) => {
    if (required && request.headers.authorization !== required) throw fastify.httpErrors.unauthorized('Metrics need the METRICS_TOKEN bearer token')
    reply.type(register.contentType)
    return register.metrics()
  })
}, { name: 'metrics', dependencies: ['config', 'auth', 'rate-limit', 'bus'] })
