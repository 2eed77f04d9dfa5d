// Reads config, listens, and shuts down gracefully. Everything else lives in the app.
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, withEnvFile } from './config.js'

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

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an uncaught error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})

try {
  await app.listen({ port: config.PORT, host: config.HOST })
} catch (err) {
  app.log.fatal({ err }, 'could not listen')
  process.exit(1)
}
