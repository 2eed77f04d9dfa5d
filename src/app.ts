// The app as a composition of plugins. Tests build exactly this; src/server.ts only listens.
import sensible from '@fastify/sensible'
import Fastify, { type FastifyInstance } from 'fastify'
import authPlugin from '../plugins/auth.js'
import busPlugin from '../plugins/bus.js'
import cachePlugin from '../plugins/cache.js'
import configPlugin from '../plugins/config.js'
import corsPlugin from '../plugins/cors.js'
import drainPlugin from '../plugins/drain.js'
import metricsPlugin from '../plugins/metrics.js'
import presencePlugin from '../plugins/presence.js'
import pressurePlugin from '../plugins/pressure.js'
import rateLimitPlugin from '../plugins/rate-limit.js'
import redisPlugin from '../plugins/redis.js'
import servicePlugin from '../plugins/service.js'
import storePlugin from '../plugins/store.js'
import syncPlugin from '../plugins/sync.js'
import swaggerPlugin from '../plugins/swagger.js'
import webPlugin from '../plugins/web.js'
import authRoutes from '../routes/auth.js'
import healthRoutes from '../routes/health.js'
import logoRoutes from '../routes/logos.js'
import metricsRoutes from '../routes/metrics.js'
import syncRoutes from '../routes/sync.js'
import voteRoutes from '../routes/votes.js'
import votingRoutes from '../routes/voting.js'
import type { Config } from './config.js'
import { clientErrorHandler, installErrorHandler } from './errors.js'
import { loggerOptions } from './logger.js'
import { validatorCompiler } from './validation.js'

export type { Config } from './config.js'
export { loadConfig } from './config.js'

/** Retry-After (seconds) of the 503 a request gets while the app closes. */
const CLOSING_RETRY_AFTER_S = 1

/** Trust the nearest `hops` proxies (e.g. 1 behind a single nginx). */
const hopsTrusted = (hops: number) => (_address: string, hop: number) => hop < hops

export interface BuildOptions {
  /** Where logs go (tests capture them); stdout by default. */
  logStream?: NodeJS.WritableStream
}

export async function buildApp (config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(config, opts.logStream),
    bodyLimit: config.BODY_LIMIT,
    trustProxy: typeof config.trustProxy === 'number' ? hopsTrusted(config.trustProxy) : config.trustProxy,
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    // On close, idle keep-alive sockets go at once; a request in flight finishes first (`true`
    // would destroy every socket, answering nobody). The drain before it closed the WebSockets.
    forceCloseConnections: 'idle',
    clientErrorHandler,
    return503OnClosing: true
  })
  app.setValidatorCompiler(validatorCompiler)
  installErrorHandler(app)
  // A request that arrives while the app closes (on a keep-alive connection still busy when the
  // close began) gets Fastify's own 503 (return503OnClosing), written before any hook runs. Every
  // other 503 here carries Retry-After, so this one does too: from the moment the close begins,
  // each new request's raw response has the header before Fastify writes it. 1 s, as for a
  // refused /sync upgrade while draining: this replica is going, another one can answer now.
  // And a keep-alive connection whose request was in flight when the close began is not kept
  // open after its answer: Node closes only the connections idle at that moment, and would keep
  // this one for keepAliveTimeout (5 s), holding the close (and the stores' and Redis's turn to
  // close) for as long.
  app.addHook('preClose', async () => {
    app.server.prependListener('request', (_req, res) => { res.setHeader('retry-after', CLOSING_RETRY_AFTER_S) })
    app.server.keepAliveTimeout = 1
  })

  await app.register(configPlugin, { config })
  await app.register(metricsPlugin)
  await app.register(sensible)
  await app.register(swaggerPlugin)
  await app.register(pressurePlugin)
  await app.register(redisPlugin)
  await app.register(storePlugin)
  await app.register(busPlugin)
  await app.register(presencePlugin)
  await app.register(cachePlugin)
  await app.register(servicePlugin)
  await app.register(authPlugin)
  await app.register(corsPlugin)
  await app.register(rateLimitPlugin)
  await app.register(syncPlugin)
  await app.register(drainPlugin)

  await app.register(healthRoutes)
  await app.register(authRoutes)
  await app.register(logoRoutes)
  await app.register(voteRoutes)
  await app.register(votingRoutes)
  await app.register(syncRoutes)
  await app.register(metricsRoutes)
  await app.register(webPlugin) // the demo page at `/`: a catch-all GET, every API route above is more specific
  return app
}
