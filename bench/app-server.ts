// The real app (buildApp, every plugin and hook src/server.ts has) plus one extra route for the
// benchmark: `GET /baseline/logos/:id` returns a fixed copy of the logo, so it passes through the
// same global hooks (rate limit, metrics, load shedding, CORS, request ids, logging) as
// `GET /logos/:id` but skips params validation, the service, the cache, the ETag and the
// response schema. Started by cache-l1.bench.ts; config from the environment as usual.
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'

const app = await buildApp(loadConfig())
let baseline: unknown = null
app.get('/baseline/logos/:id', async (request, reply) => {
  if (baseline === null) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'POST /baseline first' })
  return baseline
})
// Fixes the baseline body: a plain copy of what GET /logos/:id returns now.
app.post('/baseline/logos/:id', async (request) => {
  const logo = await app.logos.getLogo((request.params as { id: string }).id)
  baseline = JSON.parse(JSON.stringify(logo))
  return baseline
})
// CPU this process has used (µs), read by the bench before and after each run; never under load.
app.get('/baseline/cpu', async () => process.cpuUsage())
await app.listen({ port: app.config.PORT, host: app.config.HOST })
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
