// The baseline: bare Fastify routes returning the same JSON, nothing registered around them.
// Started as a child process by cache-l1.bench.ts and reads.bench.ts: BENCH_BODY is the JSON of
// GET /logos/:id, BENCH_LIST_BODY (optional) that of GET /logos, PORT the port.
import Fastify from 'fastify'

const body = JSON.parse(process.env.BENCH_BODY ?? '{}') as Record<string, unknown>
const list = JSON.parse(process.env.BENCH_LIST_BODY ?? '{"items":[]}') as Record<string, unknown>
const app = Fastify({ logger: false })
app.get('/logos/:id', async () => body)
app.get('/logos', async () => list)
// CPU this process has used (µs), read by the bench before and after each run; never under load.
app.get('/_cpu', async () => process.cpuUsage())
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
