// Operations: Prometheus metrics, OpenAPI, readiness, load shedding, log redaction, token script.
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { JWT_SECRET, ROOT, bearer, build, eventually, freePort, listen, privatePostgres, privateRedis, token } from './helper.js'
import { SyncClient } from './sync-client.js'

/** Parses Prometheus text into "name{labels}" → value. */
export function parseMetrics (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

const sum = (m: Map<string, number>, prefix: string) =>
  [...m].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0)

t.test('metrics move with real traffic', async (t) => {
  const app = await build(t, { VOTE_RATE_LIMIT: '1' })
  const scrape = async () => {
    const res = await app.inject('/metrics')
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /text\/plain/)
    return parseMetrics(res.body)
  }
  const before = await scrape()
  t.ok(before.has('logo_sync_process_cpu_user_seconds_total'), 'process metrics')
  t.ok([...before.keys()].some((k) => k.startsWith('logo_sync_nodejs_eventloop_lag')), 'event-loop metrics')
  for (const k of before.keys()) t.match(k, /^logo_sync_/, `one prefix: ${k}`)

  const admin = await token('root', 'admin')
  const alice = await token('alice')
  const logo = (await app.inject({ method: 'POST', url: '/logos', headers: bearer(admin), payload: { title: 'M', imageUrl: 'https://x.test/m.png' } })).json()
  await app.inject('/logos')
  await app.inject('/logos')
  await app.inject({ method: 'POST', url: '/logos', headers: bearer('garbage'), payload: {} })
  await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(alice) })
  t.equal((await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(alice) })).statusCode, 429)

  const after = await scrape()
  const count = 'logo_sync_http_request_duration_seconds_count'
  t.equal(after.get(`${count}{method="GET",route="/logos",status_code="200"}`), (before.get(`${count}{method="GET",route="/logos",status_code="200"}`) ?? 0) + 2, 'HTTP duration by route and status')
  t.equal(after.get(`${count}{method="POST",route="/logos",status_code="201"}`), 1)
  t.equal(after.get(`${count}{method="POST",route="/logos",status_code="401"}`), 1)
  t.equal(after.get('logo_sync_auth_failures_total{reason="invalid_token"}'), 1, 'auth failures')
  t.equal(after.get('logo_sync_http_rate_limit_refusals_total{scope="vote"}'), 1, 'rate-limit refusals')
  t.ok(sum(after, 'logo_sync_bus_pubsub_lag_seconds_count') >= 2, 'bus lag observed for the publishes')
})

t.test('a /sync session and a cache miss then hit move their metrics', async (t) => {
  const { app, ws } = await listen(t, { SYNC_CONFLATE_MS: '0' })
  const scrape = async () => parseMetrics((await app.inject('/metrics')).body)
  const admin = await token('root', 'admin')
  // Straight into the store, past the cache: the first read is a miss that reaches the store.
  const logo = await app.store.createLogo({ title: 'S', imageUrl: 'https://x.test/s.png' })
  const before = await scrape()
  const delta = (m: Map<string, number>, k: string) => (m.get(k) ?? 0) - (before.get(k) ?? 0)

  t.equal((await app.inject(`/logos/${logo._id}`)).statusCode, 200)
  t.equal((await app.inject(`/logos/${logo._id}`)).statusCode, 200)
  const client = await SyncClient.connect(t, ws, { token: await token('alice') })
  await client.subscribe(`logos.${logo._id}`)
  await client.subscribe(`logos.${logo._id}`, logo.version)
  client.send({ op: 'subscribe', channel: 'nope' })
  await client.waitFor((f) => f.type === 'error')
  const during = await scrape()
  await app.inject({ method: 'PATCH', url: `/logos/${logo._id}`, headers: bearer(admin), payload: { title: 'S2' } })
  await client.waitFor((f) => f.type === 'updated')
  client.close()
  await client.closed
  const big = await SyncClient.connect(t, ws)
  big.send('x'.repeat(20_000))
  t.equal((await big.closed).code, 1009, 'an oversized frame closes with 1009')
  await new Promise((resolve) => setTimeout(resolve, 50))
  const after = await scrape()
  t.equal(delta(after, 'logo_sync_sync_disconnects_total{code="1009"}'), 1, 'and is recorded as 1009, not 1006')

  t.equal(during.get('logo_sync_sync_num_connections'), 1, 'connections gauge')
  t.equal(during.get('logo_sync_sync_num_subscriptions'), 1, 'subscriptions gauge')
  t.equal(during.get('logo_sync_sync_num_channels'), 1, 'channels gauge')
  t.equal(after.get('logo_sync_sync_num_connections'), 0, 'connection gone')
  t.ok(delta(after, 'logo_sync_sync_frames_received_total{op="subscribe"}') >= 3, 'frames in by op')
  t.ok(delta(after, 'logo_sync_sync_frames_sent_total{type="welcome"}') === 2, 'frames out by type (two connections)')
  t.ok(delta(after, 'logo_sync_sync_frames_sent_total{type="updated"}') === 1)
  t.ok(delta(after, 'logo_sync_sync_bytes_sent_total') > 100, 'bytes out')
  t.equal(delta(after, 'logo_sync_sync_resyncs_total{outcome="current"}'), 1, 'since current')
  t.equal(delta(after, 'logo_sync_sync_resyncs_total{outcome="none"}'), 1, 'no since')
  t.equal(delta(after, 'logo_sync_sync_errors_total{code="unknown_channel"}'), 1, 'protocol errors by code')
  t.equal(delta(after, 'logo_sync_sync_disconnects_total{code="1005"}'), 1, 'disconnects by close code (1005: closed without a code)')
  t.ok(delta(after, 'logo_sync_sync_broadcast_duration_seconds_count') >= 1, 'fanout duration observed')
  t.ok(delta(after, 'logo_sync_sync_delivery_latency_seconds_count') >= 1, 'bus-to-delivery latency observed')
  t.ok(delta(during, 'logo_sync_cache_misses_total{level="l1"}') >= 1, 'the cold read missed L1')
  t.ok(delta(during, 'logo_sync_store_reads_total') >= 1, 'and reached the store')
  t.ok(delta(during, 'logo_sync_cache_hits_total{level="l1"}') >= 1, 'the next read hit L1')
})

t.test('METRICS_TOKEN guards /metrics; METRICS_ENABLED=false removes it', async (t) => {
  const guarded = await build(t, { METRICS_TOKEN: 'scrape-me-please' })
  t.equal((await guarded.inject('/metrics')).statusCode, 401)
  t.equal((await guarded.inject({ url: '/metrics', headers: bearer('scrape-me-please') })).statusCode, 200)
  const off = await build(t, { METRICS_ENABLED: 'false' })
  t.equal((await off.inject('/metrics')).statusCode, 404)
})

t.test('/metrics on the app port counts against the per-IP limit; METRICS_PORT moves it to a port of its own', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '5' })
  const scrape = (ip: string) => app.inject({ url: '/metrics', remoteAddress: ip })
  for (let i = 0; i < 5; i++) t.equal((await scrape('10.1.1.1')).statusCode, 200)
  const refused = await scrape('10.1.1.1')
  t.equal(refused.statusCode, 429, 'one address cannot scrape without bound')
  t.ok(Number(refused.headers['retry-after']) > 0, 'with Retry-After')
  t.equal((await scrape('10.1.1.2')).statusCode, 200, 'a scraper on another address is unaffected')

  const metricsPort = await freePort()
  const { app: split, http } = await listen(t, { METRICS_PORT: String(metricsPort), METRICS_TOKEN: 'scrape-me-please', RATE_LIMIT_MAX: '5' })
  t.equal((await fetch(`${http}/metrics`)).status, 404, 'not on the app port')
  const own = `http://127.0.0.1:${metricsPort}`
  t.equal((await fetch(`${own}/metrics`)).status, 401, 'METRICS_TOKEN still applies')
  const ok = await fetch(`${own}/metrics`, { headers: bearer('scrape-me-please') })
  t.equal(ok.status, 200)
  t.match(ok.headers.get('content-type'), /text\/plain/)
  t.match(await ok.text(), /logo_sync_sync_num_connections/)
  for (let i = 0; i < 7; i++) await fetch(`${own}/metrics`, { headers: bearer('scrape-me-please') })
  t.equal((await fetch(`${own}/metrics`, { headers: bearer('scrape-me-please') })).status, 200, 'the scrape port is not the public per-IP budget')
  t.equal((await fetch(`${own}/logos`)).status, 404, 'it serves metrics and nothing else')
  await split.close()
  await t.rejects(fetch(`${own}/metrics`), 'closed with the app')
})

t.test('/docs/json lists every route with its schemas and the auth scheme', async (t) => {
  const app = await build(t, { JWT_SECRET: undefined })
  const res = await app.inject('/docs/json')
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.match(doc.openapi, /^3\./)
  t.same(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: doc.components.securitySchemes.bearerAuth.description })
  t.match(doc.info.description, /\/docs\/protocol\.md/)
  const expected: Record<string, string[]> = {
    '/logos': ['get', 'post'],
    '/logos/{id}': ['get', 'patch', 'delete'],
    '/logos/{id}/votes': ['get', 'post', 'delete'],
    '/me/votes': ['get'],
    '/voting': ['get'],
    '/voting/deadline': ['put'],
    '/healthz': ['get'],
    '/readyz': ['get'],
    '/metrics': ['get'],
    '/auth/dev-token': ['post'],
    '/auth/options': ['get']
  }
  for (const [path, methods] of Object.entries(expected)) {
    for (const method of methods) {
      const op = doc.paths[path]?.[method]
      t.ok(op, `${method.toUpperCase()} ${path} documented`)
      if (!op) continue
      const codes = Object.keys(op.responses)
      t.ok(codes.some((c) => c.startsWith('2')), `${method} ${path}: success response`)
      if (['post', 'put', 'patch'].includes(method) && path !== '/logos/{id}/votes') t.ok(op.requestBody?.content?.['application/json']?.schema, `${method} ${path}: request body schema`)
      if (path.includes('{id}')) t.ok(op.parameters?.some((p: { name: string }) => p.name === 'id'), `${method} ${path}: id param`)
    }
  }
  t.ok(doc.paths['/logos'].post.security, 'admin route declares bearer auth')
  t.ok(doc.paths['/logos/{id}'].get.responses['404'], 'errors documented')
  const protocol = await app.inject('/docs/protocol.md')
  t.equal(protocol.statusCode, 200)
  t.match(protocol.headers['content-type'], /markdown/)
  const ui = await app.inject('/docs')
  t.ok(ui.statusCode < 400, `UI served (${ui.statusCode} ${ui.body.slice(0, 200)})`)
})

t.test('readiness names what is down and recovers', async (t) => {
  const [pg, redis] = await Promise.all([privatePostgres(t), privateRedis(t)])
  const app = await build(t, { DATABASE_URL: pg.url, REDIS_URL: redis.url })
  const ready = async () => { const r = await app.inject('/readyz'); return { status: r.statusCode, checks: r.json().checks } }
  const until = async (want: number) => {
    for (let i = 0; i < 100; i++) { const r = await ready(); if (r.status === want) return r; await new Promise((resolve) => setTimeout(resolve, 100)) }
    return ready()
  }
  t.same(await ready(), { status: 200, checks: { store: 'ok', redis: 'ok' } })

  await pg.stop()
  t.same(await until(503), { status: 503, checks: { store: 'down', redis: 'ok' } }, 'PostgreSQL down')
  t.equal((await app.inject('/logos')).statusCode, 503, 'reads are 503, not 500, while the store is down')
  t.equal((await app.inject('/healthz')).statusCode, 200, 'still alive')
  await pg.start()
  t.same(await until(200), { status: 200, checks: { store: 'ok', redis: 'ok' } }, 'PostgreSQL back')

  await redis.stop()
  t.same(await until(503), { status: 503, checks: { store: 'ok', redis: 'down' } }, 'Redis down')
  t.equal((await app.inject('/logos')).statusCode, 200, 'reads keep working without Redis')
  await redis.start()
  t.same(await until(200), { status: 200, checks: { store: 'ok', redis: 'ok' } }, 'Redis back')
})

t.test('load shedding answers 503 with Retry-After before the process falls over', async (t) => {
  const heap = await build(t, { PRESSURE_MAX_HEAP_BYTES: '1' })
  await new Promise((resolve) => setTimeout(resolve, 600))
  const shed = await heap.inject('/logos')
  t.equal(shed.statusCode, 503)
  t.equal(shed.headers['retry-after'], '5')
  t.match(shed.json(), { code: 'unavailable', message: /under pressure/ })
  t.equal((await heap.inject('/healthz')).statusCode, 200, 'liveness is exempt')

  // A threshold well above what a busy 2-core machine lags anyway, and a lag well above it.
  const loop = await build(t, { PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '200' })
  t.equal((await loop.inject('/logos')).statusCode, 200)
  // Lag the event loop for real: a timer that keeps it busy 500 ms at a time.
  const lag = setInterval(() => { const end = Date.now() + 500; while (Date.now() < end) { /* busy */ } }, 1)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const lagging = await loop.inject('/logos')
  clearInterval(lag)
  t.equal(lagging.statusCode, 503, 'a lagging event loop sheds load')
  t.ok(await eventually(async () => (await loop.inject('/logos')).statusCode === 200, 10_000, 100), 'and recovers when the lag is gone')
})

t.test('a request that arrives while the server closes: 503 with Retry-After, after the one in flight finishes', async (t) => {
  const { app, port } = await listen(t)
  const admin = (await token('root', 'admin'))
  const body = JSON.stringify({ title: 'In flight', imageUrl: 'https://x.test/f.png' })
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { received += chunk })
  const ended = once(socket, 'close')
  // A request in flight (its body half sent) keeps this keep-alive connection busy through the close.
  socket.write(`POST /logos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const closing = app.close()
  await new Promise((resolve) => setTimeout(resolve, 100))
  // The rest of the body, and on the same connection a second request: it arrives during the close.
  socket.write(`${body.slice(10)}GET /logos HTTP/1.1\r\nHost: x\r\n\r\n`)
  await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 5000))])
  socket.destroy()
  await closing
  const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))
  t.same(statuses, [201, 503], 'the request in flight finished; the one that came during the close got 503')
  const second = received.slice(received.lastIndexOf('HTTP/1.1 '))
  t.match(second, /^retry-after: 1\r$/im, 'with Retry-After')
  t.match(second, /^connection: close\r$/im, 'and the connection closes')
})

t.test('tokens never reach the logs', async (t) => {
  const stream = new PassThrough()
  let logs = ''
  stream.on('data', (d) => { logs += d })
  const app = await build(t, { LOG_LEVEL: 'debug' }, { logStream: stream })
  const secretToken = await token('alice', 'admin')
  await app.inject({ url: `/logos?token=${secretToken}&x=1`, headers: bearer(secretToken) })
  await app.inject({ method: 'POST', url: '/logos', headers: bearer(secretToken), payload: { title: 1 } })
  await app.inject({ url: '/nope?access_token=abc.def.ghi' })
  t.ok(logs.includes('/logos?token=[REDACTED]&x=1'), 'the URL is logged with the token redacted')
  t.notOk(logs.includes(secretToken), 'no token in any log line')
  t.notOk(logs.includes(secretToken.split('.')[2]), 'not even its signature')
  t.notOk(logs.includes('abc.def.ghi'))
  const { ws } = await listen(t, { LOG_LEVEL: 'debug' }, { logStream: stream })
  const client = await SyncClient.connect(t, ws, { token: secretToken, via: 'query' })
  await client.subscribe('logos')
  client.close()
  await client.closed
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(logs, /"url":"\/sync\?token=\[REDACTED\]"/, 'the /sync upgrade is logged, token redacted')
  const lines = logs.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.match(lines.find((l) => l.msg === 'sync connection opened'), { level: 20, user: 'alice', role: 'admin' }, 'connection open logged at debug with the user')
  t.match(lines.find((l) => l.msg === 'sync connection closed'), { level: 20, user: 'alice', code: Number, durationMs: Number }, 'close logged with code and duration')
  t.notOk(logs.includes(secretToken), 'no token in any log line')
  t.notOk(logs.includes(secretToken.split('.')[2]), 'not even its signature')
  t.notOk(logs.includes(JWT_SECRET), 'the secret is never logged')
  for (const line of logs.trim().split('\n')) t.doesNotThrow(() => JSON.parse(line), 'one JSON object per line')
})

t.test('token redaction goes by the decoded parameter name, whatever the spelling', async (t) => {
  const stream = new PassThrough()
  let logs = ''
  stream.on('data', (d) => { logs += d })
  const { app, ws } = await listen(t, { LOG_LEVEL: 'debug' }, { logStream: stream })
  const secret = await token('alice', 'admin')
  const signature = secret.split('.')[2]
  // The server decodes `%74oken` to `token` and accepts it: the log must hide it just the same.
  const sneaky = await SyncClient.connect(t, `${ws.replace('/sync', '/sync?%74oken=')}${secret}`)
  t.match(sneaky.frames[0], { type: 'welcome', user: { sub: 'alice', role: 'admin' } }, 'the percent-encoded name is the token')
  sneaky.close()
  await sneaky.closed
  for (const url of [
    `/logos?%74oken=${secret}`,
    `/logos?%54%4F%4B%45%4E=${secret}`,
    `/logos?x=1;token=${secret}`,
    `/logos;token=${secret}`,
    `/logos?access%5Ftoken=${secret}&y=2`,
    `/logos??token=${secret}`,
    `/logos?token%5B%5D=${secret}`,
    `/logos?jwt=${secret}#frag`
  ]) {
    const res = await app.inject(url)
    t.ok(res.statusCode < 500, `${url.slice(0, 30)}: answered ${res.statusCode}`)
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(logs, /"url":"\/sync\?%74oken=\[REDACTED\]"/, 'the upgrade is logged with the value hidden and the name as sent')
  t.match(logs, /"url":"\/logos\?x=1;token=\[REDACTED\]"/, ';token= is redacted too')
  t.notOk(logs.includes(signature), 'no token signature in any log line')
})

t.test('npm run token prints a token the server accepts', async (t) => {
  const res = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/token.ts'), '--sub', 'ops', '--role', 'admin'], { env: { PATH: process.env.PATH, JWT_SECRET }, encoding: 'utf8' })
  t.equal(res.status, 0, res.stderr)
  const tok = res.stdout.trim()
  const app = await build(t)
  const created = await app.inject({ method: 'POST', url: '/logos', headers: bearer(tok), payload: { title: 'Ops', imageUrl: 'https://x.test/o.png' } })
  t.equal(created.statusCode, 201)
  const bad = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/token.ts'), '--sub', 'a.b'], { env: { PATH: process.env.PATH, JWT_SECRET }, encoding: 'utf8' })
  t.equal(bad.status, 2)
  const noSecret = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/token.ts'), '--sub', 'ops'], { env: { PATH: process.env.PATH }, encoding: 'utf8' })
  t.equal(noSecret.status, 78)
})
