// Our app as the real-time scenarios run it: `buildApp` with every plugin (config from the
// environment, scaled mode there), plus one route for the bench:
//   GET /_bench/memory  two forced GCs (node --expose-gc), then process.memoryUsage()
//   GET /_bench/cpu     { us }: CPU used so far (user + system)
// Started by bench/realtime/common.ts startTarget('ours'); never under load when it is asked.
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'

const app = await buildApp(loadConfig())
app.get('/_bench/memory', async () => {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
  return process.memoryUsage()
})
// CPU this process has used (µs, user + system): finer than /proc's 10 ms ticks.
app.get('/_bench/cpu', async () => { const u = process.cpuUsage(); return { us: u.user + u.system } })
await app.listen({ port: app.config.PORT, host: app.config.HOST })
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
