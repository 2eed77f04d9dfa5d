// The real app (buildApp, every plugin and hook src/server.ts has) plus routes for the benchmark,
// all behind the same global hooks (rate limit, metrics, load shedding, CORS, request ids, logs):
//   GET /baseline/logos/:id  a bare route returning a fixed copy of the logo: no params
//                            validation, no response schema, no ETag, no service, no cache
//   GET /baseline/route/:id  the same route definition as GET /logos/:id (params and response
//                            schemas, ETag, If-None-Match) returning that fixed copy instead of
//                            reading the service and the cache
// so the bench can tell apart what the plugins, the route and the cache each cost.
// Started by cache-l1.bench.ts; config from the environment as usual.
import { Type } from 'typebox'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { Logo, LogoParams } from '../src/domain.js'
import { errors, notModified, versionTag } from '../src/http.js'

const app = await buildApp(loadConfig())
let baseline: Logo | null = null
app.get('/baseline/logos/:id', async (request, reply) => {
  if (baseline === null) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'POST /baseline/logos/:id first' })
  return baseline
})
app.get('/baseline/route/:id', {
  schema: { params: LogoParams, response: { 200: Logo, 304: Type.Null(), ...errors(400, 404, 429, 503) } }
}, async (request, reply) => {
  if (baseline === null) throw app.httpErrors.notFound('POST /baseline/logos/:id first')
  if (notModified(request, reply, versionTag(baseline._id, baseline.version))) return reply
  return baseline
})
// Fixes the baseline body: a plain copy of what GET /logos/:id returns now.
app.post('/baseline/logos/:id', async (request) => {
  const logo = await app.logos.getLogo((request.params as { id: string }).id)
  baseline = JSON.parse(JSON.stringify(logo)) as Logo
  return baseline
})
// CPU this process has used (µs), read by the bench before and after each run; never under load.
app.get('/baseline/cpu', async () => process.cpuUsage())
await app.listen({ port: app.config.PORT, host: app.config.HOST })
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
