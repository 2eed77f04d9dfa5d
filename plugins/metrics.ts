import fp from 'fastify-plugin'
import {
  Counter, Gauge, Histogram, Registry, collectDefaultMetrics,
  type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration
} from 'prom-client'

/** Every metric name starts with this, Centrifugo-style: `<namespace>_<subsystem>_<name>`. */
const METRIC_PREFIX = 'logo_sync_'

/** A prom-client configuration without the registry and the prefix (both are the app's). */
type Config<C> = Omit<C, 'registers' | 'name'> & { name: string }

/**
 * The app's metrics: a prom-client registry of its own (several apps may share a test process),
 * every name prefixed `logo_sync_`. This is the one way to feed metrics: the plugin that owns a
 * thing declares its metrics here, at registration, and records into them itself (`inc`,
 * `observe`), or gives them a `collect` that reads its numbers at scrape time. Nothing here
 * knows the other plugins; routes/metrics.ts serves `render()`.
 */
export class Metrics {
  private readonly registry = new Registry()
  private rendering: Promise<string> | null = null

  constructor () {
    // The event-loop lag metrics sample the loop every 100 ms rather than prom-client's default 10:
    // a timer every 10 ms was most of an idle replica's CPU (commit eea507e, "Idle CPU").
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX, eventLoopMonitoringPrecision: 100 })
  }

  counter<L extends string = string> (config: Config<CounterConfiguration<L>>): Counter<L> {
    return new Counter({ ...config, name: METRIC_PREFIX + config.name, registers: [this.registry] })
  }

  gauge<L extends string = string> (config: Config<GaugeConfiguration<L>>): Gauge<L> {
    return new Gauge({ ...config, name: METRIC_PREFIX + config.name, registers: [this.registry] })
  }

  histogram<L extends string = string> (config: Config<HistogramConfiguration<L>>): Histogram<L> {
    return new Histogram({ ...config, name: METRIC_PREFIX + config.name, registers: [this.registry] })
  }

  /** The Content-Type of `render()`'s text. */
  get contentType (): string {
    return this.registry.contentType
  }

  /**
   * Every metric in the Prometheus text format. Rendering walks every metric (and collects the
   * default process ones), so concurrent scrapes share one rendering.
   */
  render (): Promise<string> {
    this.rendering ??= this.registry.metrics().finally(() => { this.rendering = null })
    return this.rendering
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/**
 * Prometheus metrics with prom-client (`fastify.metrics`), registered right after the config so
 * every other plugin can declare its own. Records the REST request durations itself. Served at
 * GET /metrics by routes/metrics.ts (METRICS_ENABLED, METRICS_TOKEN, METRICS_PORT).
 */
export default fp(async function metricsPlugin (fastify) {
  const metrics = new Metrics()
  fastify.decorate('metrics', metrics)
  const httpDuration = metrics.histogram({
    name: 'http_request_duration_seconds',
    help: 'REST request duration by route and status',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
  })
  fastify.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url
    if (route === undefined || route === '/metrics') return
    httpDuration.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
  })
}, { name: 'metrics', dependencies: ['config'] })
