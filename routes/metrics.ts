import { createServer, type Server } from 'node:http'
import type { FastifyPluginAsync } from 'fastify'
import type { Metrics } from '../plugins/metrics.js'

/**
 * GET /metrics: `fastify.metrics` in the Prometheus text format (METRICS_ENABLED; METRICS_TOKEN,
 * when set, is required as a bearer token). On the app's port, or on METRICS_PORT alone.
 */
const metricsRoutes: FastifyPluginAsync = async (fastify) => {
  if (!fastify.config.METRICS_ENABLED) return
  const { METRICS_TOKEN, METRICS_PORT, HOST } = fastify.config
  const metrics = fastify.metrics
  const required = METRICS_TOKEN ? `Bearer ${METRICS_TOKEN}` : null

  if (METRICS_PORT !== undefined) {
    // The usual Prometheus layout: metrics on a port of their own, which the network keeps
    // away from the public (only the scraper reaches it), and nothing of them on the app's port.
    const server = await listenForScrapes(METRICS_PORT, HOST, required, metrics)
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
    reply.type(metrics.contentType)
    return metrics.render()
  })
}

/** A bare HTTP server answering GET /metrics only (METRICS_PORT). Resolves once it listens. */
function listenForScrapes (port: number, host: string, required: string | null, metrics: Metrics): Promise<Server> {
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
    metrics.render().then(
      (text) => { res.writeHead(200, { 'content-type': metrics.contentType }).end(text) },
      () => { res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics failed\n') }
    )
  })
  server.keepAliveTimeout = 65_000 // longer than a scrape interval: one connection per scraper
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve(server) })
  })
}

export default metricsRoutes
