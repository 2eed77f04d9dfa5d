// Graceful drain (plugins/drain.ts, src/server.ts) with real processes behind the shipped
// nginx.conf: SDK clients spread over replicas A and B through nginx, A gets SIGTERM. /readyz on A
// answers 503 at once while REST and /sync keep serving; then A's clients get 1001 spread over
// the window and a new upgrade to A gets 503; a request in flight when A closes still finishes;
// A exits 0 within SHUTDOWN_GRACE_MS; every client ends on B in the stored state.
import { request } from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import { WebSocket } from 'ws'
import { LogoSyncClient, type Logo } from '@logo-sync/client'
import { bearer, scaledEnv, startNginx, startServer, token, type ServerProcess } from './helper.js'
import { until } from './redis-topologies.js'

const DRAIN_MS = 2000
const SPREAD_MS = 2000
const GRACE_MS = 12_000
const CLIENTS = 16

/** Open /sync connections on one replica, from its own metrics. */
async function connectionsOn (server: ServerProcess): Promise<number> {
  const text = await (await fetch(`${server.http}/metrics`)).text()
  return Number(/^logo_sync_sync_num_connections (\d+)/m.exec(text)?.[1] ?? NaN)
}

/** Resolves true once nothing accepts TCP connections on the port any more. */
const refuses = (port: number) => new Promise<boolean>((resolve) => {
  const socket = connect(port, '127.0.0.1')
  socket.once('connect', () => { socket.destroy(); resolve(false) })
  socket.once('error', () => resolve(true))
})

t.test('SIGTERM behind nginx: drain, spread 1001s, in-flight requests finish, clients end on the other replica', async (t) => {
  const env = await scaledEnv(t, {
    SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
    SHUTDOWN_SPREAD_MS: String(SPREAD_MS),
    SHUTDOWN_GRACE_MS: String(GRACE_MS),
    RATE_LIMIT_MAX: '1000000',
    VOTE_RATE_LIMIT: '1000000',
    SYNC_CONFLATE_MS: '20',
    LOG_LEVEL: 'info'
  })
  const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])
  const nginx = await startNginx(t, [a.port, b.port])
  const admin = bearer(await token('admin', 'admin'))
  const logos: Logo[] = []
  for (const title of ['Drain one', 'Drain two']) {
    const res = await fetch(`${b.http}/logos`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ title, imageUrl: 'https://img.test/d.png' }) })
    logos.push(await res.json() as Logo)
  }
  const vote = async (server: { http: string }, logo: Logo, sub: string) =>
    (await fetch(`${server.http}/logos/${logo._id}/votes`, { method: 'POST', headers: bearer(await token(sub)) })).status

  // SDK clients through nginx: round robin puts some on each replica.
  const started = Date.now()
  const clients = Array.from({ length: CLIENTS }, (_, i) => {
    const client = new LogoSyncClient({ url: nginx.ws, WebSocket })
    t.teardown(() => client.close())
    const held = new Map<string, unknown>()
    const goingAway: number[] = []
    client.on('status', (_status, info) => { if (info.closeCode === 1001) goingAway.push(Date.now()) })
    for (const logo of logos) client.subscribe<number>(`logos.${logo._id}.votes`, (n) => held.set(logo._id, n))
    return { i, client, held, goingAway }
  })
  await until('every client to hold both counts', () => clients.every((c) => c.held.size === logos.length), 30_000)
  const onA = await connectionsOn(a)
  t.equal(onA + await connectionsOn(b), CLIENTS, `${CLIENTS} clients connected (${onA} on A)`)
  t.ok(onA >= 3, `round robin put clients on A too (${onA})`)

  // A request that will still be in flight when A closes: headers and half a body now.
  let inFlightStatus = 0
  const slow = request({ host: '127.0.0.1', port: a.port, path: '/logos', method: 'POST', headers: { ...admin, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } })
  const slowDone = new Promise<void>((resolve, reject) => {
    slow.on('response', (res) => { inFlightStatus = res.statusCode!; res.resume(); res.on('end', resolve) })
    slow.on('error', reject)
  })
  slow.write('{"title":"In flight","imageUrl":')
  slow.flushHeaders()

  const sigterm = Date.now()
  a.child.kill('SIGTERM')
  const exited = new Promise<number | null>((resolve) => a.child.once('exit', (code) => resolve(code)))

  // At once: not ready. During the window: REST and /sync still served on A.
  await until('A /readyz to answer 503', async () => (await fetch(`${a.http}/readyz`)).status === 503, 1500)
  const readyz = await (await fetch(`${a.http}/readyz`)).json() as { status: string }
  t.equal(readyz.status, 'draining', `/readyz says draining ${Date.now() - sigterm} ms after SIGTERM`)
  t.equal((await fetch(`${a.http}/logos`)).status, 200, 'GET /logos on A is 200 during the drain')
  t.equal(await vote(a, logos[0], 'during-drain'), 200, 'a vote through A is 200 during the drain')
  const late = new WebSocket(a.ws)
  const lateWelcome = await new Promise<string>((resolve, reject) => { late.once('message', (d) => resolve(String(d))); late.once('error', reject) })
  t.match(JSON.parse(lateWelcome), { type: 'welcome' }, 'a new /sync connection to A is welcome during the drain')
  const lateClosed = new Promise<number>((resolve) => late.once('close', (code) => resolve(code)))
  t.ok(Date.now() - sigterm < DRAIN_MS, 'all of that inside the drain window')

  // The closes: a new upgrade to A is refused with 503 (nginx retries it elsewhere) once they start.
  await until('the first 1001', () => clients.some((c) => c.goingAway.length > 0), DRAIN_MS + SPREAD_MS + 5000)
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(a.ws)
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode!); ws.terminate() })
    ws.once('open', () => { resolve(101); ws.terminate() })
    ws.once('error', () => resolve(0))
  })
  t.equal(refused, 503, 'a new upgrade to A is refused with 503 once the closes start')
  t.equal(await lateClosed, 1001, 'the connection opened during the drain is closed with 1001 too')
  // Votes keep landing through B meanwhile.
  for (let i = 0; i < 10; i++) t.equal(await vote(b, logos[i % 2], `meanwhile${i}`), 200)

  // The in-flight request outlives the listener: finish its body once A refuses new connections.
  await until('A to stop listening', () => refuses(a.port), GRACE_MS)
  slow.end('"https://img.test/late.png"}')
  await slowDone
  t.equal(inFlightStatus, 201, 'the request in flight when A closed its listener was answered')

  const code = await exited
  const took = Date.now() - sigterm
  t.equal(code, 0, 'A exits 0')
  t.ok(took < GRACE_MS, `within SHUTDOWN_GRACE_MS (${took} ms)`)
  t.notMatch(a.output(), /"level":(50|60)/, 'A logged no error while shutting down')

  // The 1001s: every client that was on A got one, after the drain, spread over the window.
  const closes = clients.flatMap((c) => c.goingAway.map((at) => at - sigterm)).sort((x, y) => x - y)
  t.equal(closes.length, onA, `each of A's ${onA} clients was told 1001, once`)
  t.ok(closes[0] >= DRAIN_MS - 100, `the first 1001 came after the drain window (${closes[0]} ms)`)
  const span = closes.at(-1)! - closes[0]
  t.ok(span >= SPREAD_MS / 2, `the 1001s spread over ${span} ms, not one tick (window ${SPREAD_MS} ms): ${closes.join(', ')}`)
  t.ok(new Set(closes.map((ms) => Math.floor(ms / 100))).size >= Math.min(onA, 3), 'in several batches')

  // Every client ends on B, in the stored state.
  await until('every client to be back, on B', async () => (await connectionsOn(b)) === CLIENTS, 30_000)
  t.pass(`all ${CLIENTS} clients are connected to B`)
  for (let i = 0; i < 6; i++) t.equal(await vote(b, logos[i % 2], `after${i}`), 200)
  const stored = await Promise.all(logos.map(async (l) => (await (await fetch(`${b.http}/logos/${l._id}/votes`)).json() as { totalVotes: number }).totalVotes))
  await until('every client to hold the stored counts', () => clients.every((c) => logos.every((l, k) => c.held.get(l._id) === stored[k])), 15_000)
  t.pass(`every client holds the stored counts (${stored.join(', ')}) ${Date.now() - started} ms after they first connected`)
})
