// The baseline: a bare Fastify route returning the same JSON, nothing registered around it.
// Started as a child process by cache-l1.bench.ts: BENCH_BODY is the JSON, PORT the port.
import Fastify from 'fastify'

const body = JSON.parse(process.env.BENCH_BODY ?? '{}') as Record<string, unknown>
const app = Fastify({ logger: false })
app.get('/logos/:id', async () => body)
// CPU this process has used (µs), read by the bench before and after each run; never under load.
app.get('/_cpu', async () => process.cpuUsage())
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
