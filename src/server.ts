// Reads config, listens, and shuts down gracefully. Everything else lives in the app.
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, withEnvFile } from './config.js'
import { settleWithin } from './timeout.js'

// ./.env, when present, under the real environment (which wins).
const { env, file: envFile } = withEnvFile()
let config
try {
  config = loadConfig(env)
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(78) // EX_CONFIG
  }
  throw err
}

const app = await buildApp(config)
if (envFile) app.log.info({ envFile }, 'read settings from the .env file (the environment wins over it)')

/** Of what is left of the grace period when close() starts, this much (at most half) is kept for closing the stores and Redis. */
const CLOSE_RESERVE_MS = 5000
/** Kept back from the grace period so the process exits 0 on its own before close-with-grace's timer. */
const CLOSE_MARGIN_MS = 300

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
  const deadline = performance.now() + config.SHUTDOWN_GRACE_MS
  if (err) app.log.error({ err }, 'closing after an uncaught error')
  else app.log.info({ signal }, 'shutting down')
  // SIGTERM is how orchestrators stop a replica (docker stop, Kubernetes): leave the load
  // balancer gracefully first (plugins/drain.ts). Ctrl-C (SIGINT) and a crash close at once.
  if (signal === 'SIGTERM') await app.drain()
  // Requests in flight finish, but not past the point where the stores and Redis would no longer
  // have time to close within the grace period: then the sockets still open are cut, and the
  // exit code is still 0.
  const left = deadline - performance.now()
  const cut = setTimeout(() => app.server.closeAllConnections(), Math.max(0, left - Math.min(CLOSE_RESERVE_MS, left / 2)))
  cut.unref()
  // And the close itself is bounded: a step that never settles (seen with a frozen Redis) must
  // not turn a clean shutdown into close-with-grace's exit 1. What did not close is logged.
  const closed = await settleWithin(app.close(), Math.max(0, deadline - performance.now() - CLOSE_MARGIN_MS))
  clearTimeout(cut)
  if (!closed) app.log.warn('shutdown: some connections did not close in time; exiting anyway')
})

try {
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  app.log.fatal({ err }, 'could not listen')
  process.exit(1)
}
