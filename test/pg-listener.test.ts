// The reconnecting LISTEN connection shared by the PostgreSQL bus and presence
// (src/pg-listener.ts): it listens on the channels it is given, reconnects by itself when its
// connection is killed or goes silent (the periodic check), reports each gap once it listens
// again, and its first connection and its close are bounded. A silent peer is a TCP proxy of
// the test's own that stops forwarding (the shared PostgreSQL is never frozen).
import net from 'node:net'
import pg from 'pg'
import t from 'tap'
import { openPgListener, type PgListenerOptions } from '../src/pg-listener.js'
import { eventually, PG_URL, uniqueName, type TestLike } from './helper.js'

const quiet = { info () {}, warn () {} }

/** A TCP proxy to the shared PostgreSQL that can go silent: while frozen it forwards nothing, either way. */
async function silentableProxy (t: TestLike) {
  const target = new URL(PG_URL)
  let frozen = false
  const sockets = new Set<net.Socket>()
  const server = net.createServer((inbound) => {
    const outbound = net.connect(Number(target.port || 5432), target.hostname)
    for (const s of [inbound, outbound]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => { sockets.delete(s); inbound.destroy(); outbound.destroy() })
    }
    inbound.on('data', (chunk) => { if (!frozen) outbound.write(chunk) })
    outbound.on('data', (chunk) => { if (!frozen) inbound.write(chunk) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  const url = new URL(PG_URL)
  url.hostname = '127.0.0.1'
  url.port = String((server.address() as net.AddressInfo).port)
  return { url: url.toString(), freeze: () => { frozen = true }, thaw: () => { frozen = false } }
}

async function admin (t: TestLike) {
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  t.teardown(() => client.end())
  return client
}

/** A listener recording what it hears and its gaps; closed at teardown. */
async function listen (t: TestLike, extra: Partial<PgListenerOptions> = {}) {
  const heard: Array<[string, string]> = []
  let gaps = 0
  const applicationName = uniqueName('pgl')
  const channels = [uniqueName('one'), uniqueName('two')]
  const listener = await openPgListener({
    connectionString: PG_URL,
    channels,
    name: 'test',
    applicationName,
    onNotification: (channel, payload) => heard.push([channel, payload]),
    onGap: () => { gaps++ },
    log: quiet,
    timeoutMs: 1000,
    checkEveryMs: 200,
    retry: { minMs: 20, maxMs: 100 },
    ...extra
  })
  t.teardown(() => listener.close())
  return { listener, heard, channels, applicationName, gaps: () => gaps }
}

t.test('it listens on every channel it is given, and hears nothing else', async (t) => {
  const db = await admin(t)
  const { heard, channels, gaps } = await listen(t)
  await db.query('SELECT pg_notify($1, $2), pg_notify($3, $4), pg_notify($5, $6)', [channels[0], 'a', uniqueName('other'), 'x', channels[1], 'b'])
  t.ok(await eventually(() => heard.length >= 2), 'both notifications arrive')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(heard, [[channels[0], 'a'], [channels[1], 'b']], 'in order, each with its channel; the other channel is not heard')
  t.equal(gaps(), 0, 'the first connection is no gap')
})

t.test('its connection killed: it reconnects by itself, reports the gap once, and hears again', async (t) => {
  const db = await admin(t)
  const { listener, heard, channels, applicationName, gaps } = await listen(t)
  const before = listener.client
  const { rowCount } = await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName])
  t.equal(rowCount, 1, 'its backend was terminated')
  t.ok(await eventually(() => gaps() === 1), 'the gap is reported')
  t.ok(listener.client && listener.client !== before, 'on a new connection')
  await db.query('SELECT pg_notify($1, $2)', [channels[1], 'after'])
  t.ok(await eventually(() => heard.some(([, p]) => p === 'after')), 'notifications arrive again')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(gaps(), 1, 'one gap, reported once')
})

t.test('a silent peer (no FIN): the periodic check notices, and it comes back once the peer answers', async (t) => {
  const proxy = await silentableProxy(t)
  const db = await admin(t)
  const warnings: string[] = []
  const { listener, heard, channels, gaps } = await listen(t, { connectionString: proxy.url, timeoutMs: 300, log: { info () {}, warn: (_o, msg) => { warnings.push(msg) } } })
  proxy.freeze()
  t.ok(await eventually(() => listener.client === null, 5000), 'the check found it silent and dropped it')
  t.match(warnings, ['test lost its PostgreSQL listening connection; reconnecting'], 'and said so')
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(gaps(), 0, 'no gap is reported while it cannot listen')
  t.ok(warnings.includes('test could not reach PostgreSQL; retrying in the background'), 'the failing reconnects are said once')
  proxy.thaw()
  t.ok(await eventually(() => gaps() === 1, 5000), 'listening again: the gap is reported')
  await db.query('SELECT pg_notify($1, $2)', [channels[0], 'back'])
  t.ok(await eventually(() => heard.some(([, p]) => p === 'back')), 'notifications arrive again')
})

t.test('its close is bounded: a silent peer cannot hold a shutdown', async (t) => {
  const proxy = await silentableProxy(t)
  const { listener } = await listen(t, { connectionString: proxy.url, checkEveryMs: 60_000, closeTimeoutMs: 300 })
  proxy.freeze()
  const started = Date.now()
  await listener.close()
  const took = Date.now() - started
  t.ok(took < 1500, `closed in ${took} ms`)
  t.equal(listener.client, null)
})

t.test('the first connection: a silent peer makes it reject within timeoutMs, leaving nothing behind', async (t) => {
  const proxy = await silentableProxy(t)
  proxy.freeze()
  let gaps = 0
  const started = Date.now()
  await t.rejects(openPgListener({
    connectionString: proxy.url,
    channels: [uniqueName('never')],
    name: 'test',
    applicationName: uniqueName('pgl'),
    onNotification () {},
    onGap: () => { gaps++ },
    log: quiet,
    timeoutMs: 400,
    checkEveryMs: 50,
    retry: { minMs: 10, maxMs: 20 }
  }), /timed out after 400 ms|timeout expired/, 'it rejects (its own bound or the connect timeout, whichever fires first)')
  t.ok(Date.now() - started < 2000, `rejected in ${Date.now() - started} ms`)
  proxy.thaw()
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(gaps, 0, 'no reconnect runs behind a failed open')
})
