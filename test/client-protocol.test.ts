// LogoSyncClient against a scripted server: version rules, one wire subscription per channel,
// resubscribe with `since`, heartbeat, token refresh, backoff, close(). The real server's
// behaviour is covered by test/client.test.ts; here the server says exactly what a test needs.
import { test } from 'tap'
import { WebSocket } from 'ws'
import { LogoSyncClient, backoffDelay, tokenExpiry, type ChannelEvent, type Logo } from '@logo-sync/client'
import { fakeSyncServer, until, type FakeConnection } from './fixtures/fake-sync-server.js'
import { token, type TestLike } from './helper.js'

const logo = (id: string, version: number, extra: Partial<Logo> = {}): Logo => ({
  _id: id,
  title: `Logo ${id}`,
  imageUrl: 'https://example.com/x.png',
  totalVotes: 0,
  version,
  createdAt: '2025-01-01T00:00:00.000Z',
  updatedAt: '2025-01-01T00:00:00.000Z',
  ...extra
})

function client (t: TestLike, url: string, opts: Partial<ConstructorParameters<typeof LogoSyncClient>[0]> = {}) {
  const c = new LogoSyncClient({ url, WebSocket, reconnect: { minDelayMs: 10, baseDelayMs: 50, maxDelayMs: 200 }, ...opts })
  t.teardown(() => c.close())
  return c
}

const subscribeOf = (conn: FakeConnection, channel: string) => conn.waitFor((f) => f.op === 'subscribe' && f.channel === channel)

test('drops anything older than the version held, per channel and per list item', async (t) => {
  const server = await fakeSyncServer(t)
  const c = client(t, server.url)
  const seen: Record<string, ChannelEvent[]> = {}
  const record = (ch: string) => c.subscribe(ch, (_data, e) => { (seen[ch] ??= []).push(e) })
  record('logos.a'); record('logos'); record('logos.a.votes')
  const conn = await server.connection(0)
  await subscribeOf(conn, 'logos.a'); await subscribeOf(conn, 'logos'); await subscribeOf(conn, 'logos.a.votes')

  // logos.<id>
  conn.send({ channel: 'logos.a', type: 'snapshot', version: 5, data: logo('a', 5, { title: 'five' }) })
  conn.send({ channel: 'logos.a', type: 'updated', version: 4, data: logo('a', 4, { title: 'four' }) })
  conn.send({ channel: 'logos.a', type: 'updated', version: 5, data: logo('a', 5, { title: 'five again' }) })
  conn.send({ channel: 'logos.a', type: 'updated', version: 6, data: logo('a', 6, { title: 'six' }) })
  conn.send({ channel: 'logos.a', type: 'deleted', version: 3, data: { _id: 'a' } })
  // logos.<id>.votes
  conn.send({ channel: 'logos.a.votes', type: 'snapshot', version: 6, data: 3 })
  conn.send({ channel: 'logos.a.votes', type: 'updated', version: 5, data: 2 })
  conn.send({ channel: 'logos.a.votes', type: 'updated', version: 8, data: 5 })
  // the list: each item by its own version
  conn.send({ channel: 'logos', type: 'snapshot', version: null, data: [logo('a', 6), logo('b', 2, { totalVotes: 1 })] })
  conn.send({ channel: 'logos', type: 'votes', version: null, data: { a: { totalVotes: 5, version: 8 }, b: { totalVotes: 0, version: 1 } } })
  conn.send({ channel: 'logos', type: 'updated', version: 7, data: logo('a', 7, { title: 'late' }) })
  conn.send({ channel: 'logos', type: 'created', version: 1, data: logo('c', 1) })
  conn.send({ channel: 'logos', type: 'deleted', version: 3, data: { _id: 'b' } })
  conn.send({ channel: 'logos', type: 'updated', version: 2, data: logo('b', 2, { title: 'zombie' }) })
  conn.send({ channel: 'logos', type: 'votes', version: null, data: { b: { totalVotes: 9, version: 2 } } })
  await until(() => c.getState('logos').status === 'ready' && c.get<Logo[]>('logos')!.length === 2, 2_000, 'list')
  await c.ping()

  t.equal(c.get<Logo>('logos.a')!.title, 'six')
  t.equal(c.getState('logos.a').version, 6)
  t.same(seen['logos.a'].map((e) => e.version), [5, 6], 'only newer versions reached the callback')
  t.equal(c.get<number>('logos.a.votes'), 5)
  t.same(seen['logos.a.votes'].map((e) => e.version), [6, 8])
  t.same(c.get<Logo[]>('logos')!.map((l) => [l._id, l.version, l.totalVotes]), [['a', 8, 5], ['c', 1, 0]],
    'vote count applied by item version; an older whole item, a late update of a deleted item and its late votes dropped')

  conn.send({ channel: 'logos.a', type: 'deleted', version: 9, data: { _id: 'a' } })
  await c.ping()
  t.equal(c.getState('logos.a').status, 'deleted')
  t.equal(c.get('logos.a'), undefined)
})

test('one wire subscription per channel however many callbacks; unsubscribe after the last leaves', async (t) => {
  const server = await fakeSyncServer(t)
  const c = client(t, server.url)
  const offs = [c.subscribe('voting.deadline', () => {}), c.subscribe('voting.deadline', () => {}), c.watch('voting.deadline', () => {})]
  const conn = await server.connection(0)
  await subscribeOf(conn, 'voting.deadline')
  conn.send({ type: 'subscribed', channel: 'voting.deadline', version: 2 })
  conn.send({ channel: 'voting.deadline', type: 'snapshot', version: 2, data: null })
  const late: unknown[] = []
  offs.push(c.subscribe('voting.deadline', (d) => late.push(d)))
  await until(() => late.length === 1, 2_000, 'replay of held data to a late subscriber')
  t.same(late, [null], 'a late subscriber gets the held state at once, without a new wire subscription')
  offs[0](); offs[1](); offs[2]()
  await c.ping()
  t.equal(conn.ops('unsubscribe').length, 0, 'still one listener left')
  offs[3]()
  await conn.waitFor((f) => f.op === 'unsubscribe')
  t.equal(conn.ops('subscribe').length, 1, 'one subscribe on the wire')
  t.equal(conn.ops('unsubscribe').length, 1, 'one unsubscribe, after the last listener left')
})

test('reconnects after the server goes away and resubscribes with since', async (t) => {
  const server = await fakeSyncServer(t)
  const c = client(t, server.url)
  const statuses: string[] = []
  c.on('status', (s) => statuses.push(s))
  for (const ch of ['logos', 'logos.a', 'logos.a.votes', 'voting.deadline']) c.subscribe(ch, () => {})
  const first = await server.connection(0)
  await subscribeOf(first, 'voting.deadline')
  first.send({ channel: 'logos.a', type: 'snapshot', version: 4, data: logo('a', 4) })
  first.send({ channel: 'logos.a.votes', type: 'snapshot', version: 4, data: 0 })
  first.send({ channel: 'voting.deadline', type: 'snapshot', version: 2, data: null })
  first.send({ channel: 'logos', type: 'snapshot', version: null, data: [logo('a', 4)] })
  await c.ping()
  first.socket.close(1001, 'server shutting down')

  const second = await server.connection(1)
  const subs = await Promise.all(['logos', 'logos.a', 'logos.a.votes', 'voting.deadline'].map((ch) => subscribeOf(second, ch)))
  t.same(subs.map((f) => f.since), [undefined, 4, 4, 2], 'since = the version held; the list is sent whole')
  t.equal(second.ops('subscribe').length, 4, 'each channel once')
  t.ok(statuses.includes('reconnecting') && statuses.at(-1) === 'open', `went reconnecting then open: ${statuses.join(' → ')}`)
  t.equal(c.get<Logo>('logos.a')!.version, 4, 'state held through the gap')
})

test('a silent connection is declared dead by heartbeat and replaced', async (t) => {
  let connections = 0
  const server = await fakeSyncServer(t, (conn) => {
    // The first connection never answers: a peer that vanished without a FIN.
    conn.answerPings = ++connections > 1
    conn.welcome({ heartbeatMs: 100 })
  })
  const c = client(t, server.url, { pongTimeoutMs: 200 })
  c.subscribe('voting.deadline', () => {})
  const first = await server.connection(0)
  await first.waitFor((f) => f.op === 'ping', 2_000)
  const started = Date.now()
  const second = await server.connection(1, 3_000)
  t.ok(Date.now() - started < 2_000, 'replaced within heartbeat + pong timeout + backoff')
  await subscribeOf(second, 'voting.deadline')
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.equal(server.connections.length, 2, 'an answering connection is kept')
  t.ok(second.ops('ping').length >= 2, 'the client pinged while idle')
})

test('refreshes the token in-band before it expires, and after a 4001 reconnects with a new one', async (t) => {
  const reasons: string[] = []
  let n = 0
  const server = await fakeSyncServer(t, (conn) => conn.welcome({ user: { sub: 'alice', role: 'user' } }))
  client(t, server.url, {
    tokenRefreshMarginMs: 1_000,
    getToken: async ({ reason }) => {
      reasons.push(reason)
      n++
      return token('alice', 'user', { expiresIn: 1_000 + n * 1_000 })
    }
  })
  const first = await server.connection(0)
  const tok1 = first.token!
  t.ok(tok1, 'the token rides the URL (?token=) for browsers')
  const auth = await first.waitFor((f) => f.op === 'auth', 3_000)
  t.not(auth.token, tok1, 'a fresh token was sent in-band')
  t.ok(tokenExpiry(String(auth.token))! > tokenExpiry(tok1)!, 'and it expires later')
  t.ok(Date.now() < tokenExpiry(tok1)!, 'before the first one expired')
  first.send({ type: 'authenticated', id: auth.id, user: { sub: 'alice', role: 'user' }, expiresAt: null })
  t.equal(server.connections.length, 1, 'on the same connection')

  first.socket.close(4001, 'token expired')
  const second = await server.connection(1)
  t.ok(second.token && second.token !== auth.token, 'reconnected with a new token')
  t.equal(reasons[0], 'connect')
  t.equal(reasons[1], 'refresh')
  t.equal(reasons[2], 'unauthorized', 'after 4001 getToken is told why')
})

test('a refused private channel is retried once a new token is authenticated', async (t) => {
  const server = await fakeSyncServer(t)
  let signedIn = false
  const c = client(t, server.url, { getToken: async () => (signedIn ? token('bob') : null) })
  c.subscribe('users.bob.votes', () => {})
  const conn = await server.connection(0)
  const sub = await subscribeOf(conn, 'users.bob.votes')
  conn.send({ type: 'error', id: sub.id, channel: 'users.bob.votes', code: 'unauthorized', message: 'this channel needs a token' })
  await until(() => c.getState('users.bob.votes').error?.code === 'unauthorized', 2_000, 'channel error')
  signedIn = true
  await c.refreshAuth()
  const auth = await conn.waitFor((f) => f.op === 'auth')
  conn.send({ type: 'authenticated', id: auth.id, user: { sub: 'bob', role: 'user' }, expiresAt: null })
  await until(() => conn.ops('subscribe').length === 2, 2_000, 'second subscribe')
  conn.send({ type: 'subscribed', channel: 'users.bob.votes', version: null })
  conn.send({ channel: 'users.bob.votes', type: 'snapshot', version: null, data: ['x'] })
  await until(() => c.getState('users.bob.votes').status === 'ready', 2_000, 'data')
  t.same(c.get('users.bob.votes'), ['x'])
  t.equal(c.getState('users.bob.votes').error, null, 'error cleared')
  t.same(c.user, { sub: 'bob', role: 'user' })
})

test('close() stops reconnecting', async (t) => {
  const server = await fakeSyncServer(t)
  const c = client(t, server.url)
  const conn = await server.connection(0)
  await until(() => c.status === 'open', 2_000, 'open')
  c.close()
  t.equal(c.status, 'closed')
  conn.socket.close(1001)
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal(server.connections.length, 1, 'no new connection after close()')
})

test('backoff: full jitter within [min, min(max, base * 2^attempt)]', async (t) => {
  const opts = { minDelayMs: 100, baseDelayMs: 500, maxDelayMs: 30_000 }
  t.equal(backoffDelay(0, opts, () => 0), 100)
  t.equal(backoffDelay(0, opts, () => 1), 500)
  t.equal(backoffDelay(3, opts, () => 1), 4_000)
  t.equal(backoffDelay(20, opts, () => 1), 30_000, 'bounded by max')
  t.equal(backoffDelay(20, opts, () => 0), 100, 'bounded below by min')
  const samples = Array.from({ length: 200 }, () => backoffDelay(4, opts))
  t.ok(samples.every((d) => d >= 100 && d <= 8_000))
  t.ok(new Set(samples).size > 50, 'spread out (jitter)')
})

test('frames beyond the pace wait their turn instead of tripping the server rate limit', async (t) => {
  const server = await fakeSyncServer(t)
  const c = client(t, server.url, { maxFramesPerSecond: 20 })
  const conn = await server.connection(0)
  await until(() => c.status === 'open', 2_000, 'open')
  for (let i = 0; i < 30; i++) c.subscribe(`logos.l${i}`, () => {})
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(conn.ops('subscribe').length, 20, 'the first second carries at most 20')
  await until(() => conn.ops('subscribe').length === 30, 2_000, 'the rest')
  t.pass('the rest follow in the next second')
})

/** A fetch whose answers the test hands out, one call at a time, whenever it likes. */
function heldFetch () {
  const calls: { method: string, path: string, answer: (body: unknown, status?: number) => void }[] = []
  const fetch = ((input: string | URL | Request, init?: RequestInit) => new Promise<Response>((resolve) => {
    calls.push({
      method: init?.method ?? 'GET',
      path: new URL(String(input)).pathname,
      answer: (body, status = 200) => resolve(new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } }))
    })
  })) as typeof globalThis.fetch
  const call = async (method: string, path: string) => {
    await until(() => calls.some((c) => c.method === method && c.path === path), 2_000, `${method} ${path}`)
    return calls.find((c) => c.method === method && c.path === path)!
  }
  return { fetch, calls, call }
}

/**
 * A client on the fake server whose REST answers the test holds and releases, subscribed to
 * `channels` with every subscribe acknowledged.
 */
async function heldClient (t: TestLike, channels: string[], opts: Parameters<typeof client>[2] = {}) {
  const server = await fakeSyncServer(t)
  const rest = heldFetch()
  const c = client(t, server.url, { fetch: rest.fetch, ...opts })
  for (const channel of channels) c.subscribe(channel, () => {})
  const conn = await server.connection(0)
  for (const channel of channels) await subscribeOf(conn, channel)
  return { server, rest, c, conn }
}

test('a REST read of the list started before the wire snapshot cannot bring back a logo deleted in between', async (t) => {
  const { rest, c, conn } = await heldClient(t, ['logos'])
  // The page's revalidateOnMount: GET /logos starts, and is slow.
  const read = c.revalidate('logos')
  const get = await rest.call('GET', '/logos')
  // Meanwhile b is deleted, then the socket's snapshot (read after the deletion) arrives.
  conn.send({ channel: 'logos', type: 'snapshot', version: null, data: [logo('a', 1)] })
  await until(() => c.getState('logos').status === 'ready', 2_000, 'snapshot')
  get.answer({ items: [logo('a', 1), logo('b', 1)] })
  await read
  await c.ping()
  t.same(c.get<Logo[]>('logos')!.map((l) => l._id), ['a'], 'the older REST list is dropped')
})

test('a REST poll while the socket is down cannot bring back a logo created live and deleted during the outage', async (t) => {
  const { server, rest, c, conn } = await heldClient(t, ['logos'])
  conn.send({ channel: 'logos', type: 'snapshot', version: null, data: [logo('a', 1)] })
  conn.send({ channel: 'logos', type: 'created', version: 1, data: logo('b', 1) })
  await until(() => c.get<Logo[]>('logos')?.length === 2, 2_000, 'b created live')
  await server.close()
  await until(() => c.status === 'reconnecting', 2_000, 'socket down')
  // b is deleted while the client is offline; the poll's list no longer has it.
  const poll = c.revalidate('logos')
  ;(await rest.call('GET', '/logos')).answer({ items: [logo('a', 1)] })
  await poll
  t.same(c.get<Logo[]>('logos')!.map((l) => l._id), ['a'], 'what was live on the lost socket does not outlive it')
})

test('a REST read of the deadline started before a live change does not overwrite it after the socket drops', async (t) => {
  const { server, rest, c, conn } = await heldClient(t, ['voting.deadline'])
  conn.send({ channel: 'voting.deadline', type: 'snapshot', version: 1, data: '2030-01-01T00:00:00.000Z' })
  await until(() => c.getState('voting.deadline').status === 'ready', 2_000, 'snapshot')
  const read = c.revalidate('voting.deadline')
  const get = await rest.call('GET', '/voting')
  conn.send({ channel: 'voting.deadline', type: 'updated', version: 2, data: '2031-01-01T00:00:00.000Z' })
  await until(() => c.getState('voting.deadline').version === 2, 2_000, 'live change')
  await server.close()
  await until(() => c.status === 'reconnecting', 2_000, 'socket down')
  get.answer({ deadline: '2030-01-01T00:00:00.000Z', open: true, serverTime: new Date().toISOString() })
  await read
  t.equal(c.get('voting.deadline'), '2031-01-01T00:00:00.000Z', 'the live change stays (its version would make the next since skip the fix-up)')
  t.equal(c.getState('voting.deadline').version, 2)
})

test("a vote's own result shows its count at once but does not raise a list item's version past an admin's rename", async (t) => {
  const { rest, c, conn } = await heldClient(t, ['logos', 'logos.a.votes'], { getToken: () => token('alice') })
  conn.send({ channel: 'logos', type: 'snapshot', version: null, data: [logo('a', 10, { totalVotes: 5 })] })
  conn.send({ channel: 'logos.a.votes', type: 'snapshot', version: 10, data: 5 })
  await until(() => c.getState('logos').status === 'ready' && c.get('logos.a.votes') === 5, 2_000, 'snapshots')

  // An admin renames a (version 11), then alice's vote commits (version 12); the vote's REST
  // answer beats the rename's push.
  const voting = c.vote('a')
  ;(await rest.call('POST', '/logos/a/votes')).answer({ logoId: 'a', totalVotes: 6, voted: true, version: 12 })
  await voting
  t.equal(c.get<Logo[]>('logos')![0].totalVotes, 6, 'the voter sees the count at once')
  t.equal(c.get('logos.a.votes'), 6)
  t.equal(c.getState('logos.a.votes').version, 12, 'the count channel carries only the count: it may take the version')

  conn.send({ channel: 'logos', type: 'updated', version: 11, data: logo('a', 11, { title: 'Renamed', totalVotes: 5 }) })
  conn.send({ channel: 'logos.a.votes', type: 'updated', version: 11, data: 5 })
  await c.ping()
  const [a] = c.get<Logo[]>('logos')!
  t.equal(a.title, 'Renamed', 'the rename is applied')
  t.equal(a.totalVotes, 6, 'and the newer count is kept on top of it')
  t.equal(c.get('logos.a.votes'), 6, 'an older count is dropped')

  conn.send({ channel: 'logos', type: 'votes', version: null, data: { a: { totalVotes: 6, version: 12 } } })
  await c.ping()
  t.same(c.get<Logo[]>('logos')!.map((l) => [l.title, l.totalVotes, l.version]), [['Renamed', 6, 12]], 'the pushed batch brings the version')
})

test("a vote's late REST answer does not undo a newer push of the voter's own votes (two tabs)", async (t) => {
  const { rest, c, conn } = await heldClient(t, ['users.alice.votes'], { getToken: () => token('alice') })
  conn.send({ channel: 'users.alice.votes', type: 'snapshot', version: null, data: ['x'] })
  await until(() => c.getState('users.alice.votes').status === 'ready', 2_000, 'snapshot')

  // Nothing pushed while the request was out: the voter sees the vote at once.
  const first = c.vote('b')
  ;(await rest.call('POST', '/logos/b/votes')).answer({ logoId: 'b', totalVotes: 1, voted: true, version: 2 })
  await first
  t.same(c.get('users.alice.votes'), ['x', 'b'], 'applied at once when nothing newer came')

  // This tab votes for a; the server pushes that, then the other tab's unvote of a; this
  // tab's REST answer lands last.
  const second = c.vote('a')
  const post = await rest.call('POST', '/logos/a/votes')
  conn.send({ channel: 'users.alice.votes', type: 'updated', version: null, data: ['x', 'b', 'a'] })
  conn.send({ channel: 'users.alice.votes', type: 'updated', version: null, data: ['x', 'b'] })
  await c.ping()
  post.answer({ logoId: 'a', totalVotes: 1, voted: true, version: 2 })
  await second
  t.same(c.get('users.alice.votes'), ['x', 'b'], 'the late answer does not bring back a vote the other tab removed')
})

test('after a close that sends a crowd away at once (1001, 4008, 4009) the first retry is spread over 0.5–5 s', async (t) => {
  const server = await fakeSyncServer(t)
  const c = client(t, server.url, { reconnect: { minDelayMs: 100, baseDelayMs: 500, maxDelayMs: 30_000 } })
  const retries: [number | undefined, number | undefined][] = []
  c.on('status', (s, info) => { if (s === 'reconnecting') retries.push([info.closeCode, info.retryInMs]) })
  const random = Math.random
  t.teardown(() => { Math.random = random })
  let n = 0
  for (const code of [1001, 4008, 4009]) {
    const conn = await server.connection(n++, 10_000)
    await until(() => c.status === 'open', 2_000, 'open')
    Math.random = () => 0 // the shortest delay the jitter can draw
    conn.socket.close(code, 'go away')
    await until(() => retries.length === n, 2_000, `retry after ${code}`)
    Math.random = random
  }
  t.same(retries.map(([code]) => code), [1001, 4008, 4009])
  for (const [code, delay] of retries) t.ok(delay! >= 500, `after ${code} the shortest first retry is 500 ms, not 100 (got ${delay})`)

  const opts = { minDelayMs: 100, baseDelayMs: 500, maxDelayMs: 30_000, spreadMinDelayMs: 500, spreadMaxDelayMs: 5_000 }
  t.equal(backoffDelay(0, opts, () => 1, true), 5_000, 'the spread window reaches 5 s')
  t.equal(backoffDelay(4, opts, () => 1, true), 8_000, 'and grows like any backoff after that')
  t.equal(backoffDelay(0, opts, () => 1), 500, 'an ordinary drop keeps the short first window')
  t.equal(backoffDelay(0, { ...opts, maxDelayMs: 200 }, () => 1, true), 200, 'maxDelayMs bounds every delay')
})

test('a refresh that gets back the same token asks again, saying why, before the token expires', async (t) => {
  const reasons: string[] = []
  const cached = await token('alice', 'user', { expiresIn: 4_000 })
  const server = await fakeSyncServer(t, (conn) => conn.welcome({ user: { sub: 'alice', role: 'user' } }))
  const c = client(t, server.url, {
    tokenRefreshMarginMs: 1_000,
    // An app that hands out its cached token until told it will not do.
    getToken: async ({ reason }) => {
      reasons.push(reason)
      return reason === 'unauthorized' ? token('alice', 'user', { expiresIn: 60_000 }) : cached
    }
  })
  const conn = await server.connection(0)
  t.equal(conn.token, cached)
  const auth = await conn.waitFor((f) => f.op === 'auth', 5_000)
  t.not(auth.token, cached, 'a fresh token went in-band')
  t.ok(Date.now() < tokenExpiry(cached)!, 'before the cached one expired')
  t.equal(server.connections.length, 1, 'on the same connection: no 4001 needed')
  t.same(reasons.slice(0, 2), ['connect', 'refresh'])
  t.equal(reasons.at(-1), 'unauthorized', 'the repeat ask says the token held will not do')
  t.equal(c.status, 'open')
})

test('a listener that subscribes on welcome sends one subscribe, not two', async (t) => {
  const server = await fakeSyncServer(t)
  const c = client(t, server.url)
  c.on('welcome', () => { c.subscribe('logos.w', () => {}) })
  c.on('user', () => { c.subscribe('logos.u', () => {}) })
  const conn = await server.connection(0)
  await subscribeOf(conn, 'logos.w'); await subscribeOf(conn, 'logos.u')
  await c.ping()
  t.equal(conn.ops('subscribe').filter((f) => f.channel === 'logos.w').length, 1, 'subscribed on welcome: once')
  t.equal(conn.ops('subscribe').filter((f) => f.channel === 'logos.u').length, 1, 'subscribed on user: once')
})

test('a rate_limited error naming no request: unanswered subscribes are sent again after a second, at half the pace', async (t) => {
  const server = await fakeSyncServer(t)
  const c = client(t, server.url, { maxFramesPerSecond: 20 })
  const conn = await server.connection(0)
  await until(() => c.status === 'open', 2_000, 'open')
  for (const ch of ['logos.a', 'logos.b', 'logos.c', 'logos.d']) c.subscribe(ch, () => {})
  const [a, , , d] = await Promise.all(['logos.a', 'logos.b', 'logos.c', 'logos.d'].map((ch) => subscribeOf(conn, ch)))
  // a was answered; b and c were dropped over the server's limit; d is still being answered.
  conn.send({ type: 'subscribed', id: a.id, channel: 'logos.a', version: null })
  conn.send({ type: 'error', code: 'rate_limited', message: 'more than 10 frames per second; frames are being dropped' })
  conn.send({ type: 'subscribed', id: d.id, channel: 'logos.d', version: null })
  await c.ping()
  const count = (ch: string) => conn.ops('subscribe').filter((f) => f.channel === ch).length
  await until(() => count('logos.b') === 2 && count('logos.c') === 2, 3_000, 'dropped subscribes sent again')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(count('logos.a'), 1, 'an answered subscribe is not repeated')
  t.equal(count('logos.d'), 1, 'nor one answered after the error')
  t.same(c.wiredChannels.sort(), ['logos.a', 'logos.b', 'logos.c', 'logos.d'])

  // The pace is halved: 20 → 10 frames per second.
  const before = conn.ops('subscribe').length
  await new Promise((resolve) => setTimeout(resolve, 1_050)) // a fresh one-second window
  for (let i = 0; i < 30; i++) c.subscribe(`logos.p${i}`, () => {})
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(conn.ops('subscribe').length - before, 10, 'half the pace after rate_limited')
})

test('after a 4008 close the client sends at half the pace', async (t) => {
  const server = await fakeSyncServer(t)
  const c = client(t, server.url, { maxFramesPerSecond: 20 })
  const first = await server.connection(0)
  await until(() => c.status === 'open', 2_000, 'open')
  first.socket.close(4008, 'rate limit exceeded')
  const second = await server.connection(1)
  await until(() => c.status === 'open', 2_000, 'open again')
  for (let i = 0; i < 30; i++) c.subscribe(`logos.p${i}`, () => {})
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(second.ops('subscribe').length, 10, 'the first second carries at most 10')
  await until(() => second.ops('subscribe').length === 30, 3_000, 'the rest')
})
