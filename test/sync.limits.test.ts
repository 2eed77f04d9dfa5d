// /sync behaviour that needs its own limits or a look inside the process: heartbeats, shutdown,
// slow consumers, resync without a bus event, identity changes, and the stats hooks.
import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import WebSocket from 'ws'
import type { Logo } from '../src/domain.js'
import { listen, token } from './helper.js'
import { SyncClient } from './sync-client.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('heartbeats drop a peer that stops answering pings, and only that one', async (t) => {
  const { ws } = await listen(t, { SYNC_HEARTBEAT_MS: '150' })
  const dead = await SyncClient.connect(t, ws, { autoPong: false })
  const alive = await SyncClient.connect(t, ws)
  t.equal(dead.frames[0].heartbeatMs, 150, 'the welcome announces the interval')
  const { code } = await dead.closedWithin()
  t.equal(code, 1006, 'the silent peer was terminated')
  await sleep(400)
  await alive.barrier()
  t.ok(alive.isOpen, 'a peer that answers stays')
})

t.test('a peer that leaves while its handshake token is verified leaves no subscription behind', async (t) => {
  const { app, ws } = await listen(t)
  // Verification held open until the peer has gone: the frames it sent wait for it.
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  const verify = app.verifyToken
  app.verifyToken = async (jwt: string) => { await held; return await verify(jwt) }
  t.teardown(() => { app.verifyToken = verify })
  const jwt = await token('gone-early')
  const socket = new WebSocket(`${ws}?token=${jwt}`)
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject) })
  for (const channel of ['logos', 'presence.logos', 'users.gone-early.votes']) socket.send(JSON.stringify({ op: 'subscribe', channel }))
  await new Promise((resolve) => setTimeout(resolve, 50)) // the frames are in, waiting
  socket.terminate()
  const until = Date.now() + 5000
  while (app.syncStats.connections > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(app.syncStats.connections, 0, 'the hub saw it go')
  release()
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(app.syncStats.subscriptions, 0, 'no subscription was made for it afterwards')
  t.equal(app.syncStats.channels, 0, 'no channel kept')
  t.equal(app.syncHub.presence.total, 0, 'not counted as present')
})

t.test('shutdown closes every client with 1001 before the app is closed', async (t) => {
  const { app, ws } = await listen(t)
  const clients = await Promise.all([0, 1, 2].map(() => SyncClient.connect(t, ws)))
  await clients[0].subscribe('logos')
  const codes: number[] = []
  for (const c of clients) void c.closed.then(({ code }) => codes.push(code))
  await app.close()
  await Promise.all(clients.map((c) => c.closedWithin()))
  t.same(codes, [1001, 1001, 1001], 'all got 1001')
  t.match((await clients[0].closed).reason, /shutting down/)
  t.equal(app.syncStats.connections, 0)
})

async function seedLogos (app: Awaited<ReturnType<typeof listen>>['app'], n: number): Promise<Logo[]> {
  const logos: Logo[] = []
  for (let i = 0; i < n; i++) logos.push(await app.logos.createLogo({ title: `Slow ${i}`, imageUrl: 'https://img.test/s.png', description: 'x'.repeat(1900) }))
  return logos
}

t.test('a slow consumer loses only superseded updates and ends at the current state', async (t) => {
  const { app, ws } = await listen(t, { SYNC_MAX_BUFFER_BYTES: '1024', SYNC_SLOW_CONSUMER_MS: '20000', SYNC_MAX_SUBSCRIPTIONS: '100' })
  const logos = await seedLogos(app, 40)
  const slow = await SyncClient.connect(t, ws)
  const fast = await SyncClient.connect(t, ws)
  for (const c of [slow, fast]) {
    await c.subscribe('logos')
    for (const l of logos) await c.subscribe(`logos.${l._id}`)
  }
  slow.ws.pause()
  // Change everything until the server holds changes back for the paused client, then some more.
  let rounds = 0
  const started = Date.now()
  while ((app.syncStats.superseded < 200 || rounds < 10) && Date.now() - started < 20_000) {
    for (const l of logos) await app.logos.updateLogo(l._id, { title: `Slow ${l.title.split(' ')[1]} round ${rounds}` })
    rounds++
  }
  const changes = rounds * logos.length * 2 // each on logos.<id> and on the list
  t.ok(app.syncStats.superseded >= 200, `superseded frames were dropped (${app.syncStats.superseded})`)
  slow.ws.resume()
  const stored = await app.store.listLogos()
  await slow.until(() => stored.every((l) => (slow.state.value(`logos.${l._id}`) as Logo | undefined)?.version === l.version && slow.state.list.get(l._id)?.version === l.version), 20_000, 'slow client caught up')
  await fast.until(() => stored.every((l) => fast.state.list.get(l._id)?.version === l.version), 20_000, 'fast client caught up')
  for (const l of stored) {
    t.same(slow.state.value(`logos.${l._id}`), l)
    t.same(slow.state.list.get(l._id), l)
  }
  const slowChanges = slow.frames.filter((f) => f.type === 'updated').length
  t.ok(slowChanges < changes, `the slow client got ${slowChanges} of ${changes} changes, the rest superseded`)
  t.ok(slow.isOpen && fast.isOpen, 'neither was closed: they caught up in time')
})

t.test('a consumer that stays behind is closed with 4009', async (t) => {
  const { app, ws } = await listen(t, { SYNC_MAX_BUFFER_BYTES: '1024', SYNC_SLOW_CONSUMER_MS: '300', SYNC_MAX_SUBSCRIPTIONS: '100' })
  const logos = await seedLogos(app, 40)
  const slow = await SyncClient.connect(t, ws)
  const bystander = await SyncClient.connect(t, ws)
  await bystander.subscribe('voting.deadline')
  await slow.subscribe('logos')
  for (const l of logos) await slow.subscribe(`logos.${l._id}`)
  slow.ws.pause()
  // Change everything until the server holds changes back, keep it behind for well over
  // SYNC_SLOW_CONSUMER_MS, then let it read: the close frame waits behind what was already
  // buffered (the server gives it 5 s to get there).
  const started = Date.now()
  for (let r = 0; app.syncStats.superseded === 0 && Date.now() - started < 20_000; r++) {
    for (const l of logos) await app.logos.updateLogo(l._id, { title: `Behind ${r}` })
  }
  t.ok(app.syncStats.superseded > 0, 'the server is holding changes back')
  await sleep(1000)
  slow.ws.resume()
  const closed = await slow.closedWithin()
  t.equal(closed.code, 4009, 'closed with 4009')
  t.match(closed.reason, /too slow/)
  for (let i = 0; i < 100 && !app.syncStats.disconnects['4009']; i++) await sleep(20)
  t.equal(app.syncStats.disconnects['4009'], 1, 'counted by code once the server side is closed too')
  await app.logos.setDeadline(null)
  await bystander.until(() => bystander.state.version('voting.deadline') === 2, 5000, 'bystander update')
  t.ok(bystander.isOpen, 'other connections are unaffected')
})

t.test('resync pushes state that moved without a bus event, only to clients behind it', async (t) => {
  const { app, ws } = await listen(t)
  const logo = await app.logos.createLogo({ title: 'Quiet', imageUrl: 'https://img.test/q.png' })
  const a = await SyncClient.connect(t, ws, { token: await token('quiet') })
  for (const ch of [`logos.${logo._id}`, `logos.${logo._id}.votes`, 'voting.deadline', 'logos', 'users.quiet.votes']) await a.subscribe(ch)
  const b = await SyncClient.connect(t, ws)
  await b.subscribe('voting.deadline')
  // Writes straight to the store: nothing is published, as when a publish is lost.
  await app.store.castVote(logo._id, 'quiet')
  await app.store.castVote(logo._id, 'someone')
  const from = b.frames.length
  // What the bus's onResync handlers do, in their order: the cache forgets, the hub re-reads.
  app.syncCache.resync()
  app.syncHub.resync()
  const stored = (await app.store.getLogo(logo._id))!
  await a.until(() => a.state.version(`logos.${logo._id}`) === stored.version && a.state.value(`logos.${logo._id}.votes`) === 2 &&
    a.state.list.get(logo._id)?.totalVotes === 2 && (a.state.value('users.quiet.votes') as string[]).length === 1, 5000, 'resynced')
  t.same(a.state.value(`logos.${logo._id}`), stored)
  await b.barrier()
  t.equal(b.frames.slice(from).filter((f) => f.channel === 'voting.deadline').length, 0, 'the deadline did not move: nothing sent')
  t.equal(app.syncStats.busResyncs, 1)
})

t.test('a new identity loses private channels it may not read', async (t) => {
  const { ws } = await listen(t)
  const client = await SyncClient.connect(t, ws)
  client.send({ op: 'auth', token: await token('alice'), id: 1 })
  t.match(await client.waitFor((f) => f.id === 1), { type: 'authenticated', user: { sub: 'alice', role: 'user' }, expiresAt: String })
  await client.subscribe('users.alice.votes')
  client.send({ op: 'auth', token: await token('bob'), id: 2 })
  t.match(await client.waitFor((f) => f.code === 'forbidden'), { type: 'error', channel: 'users.alice.votes', code: 'forbidden' })
  t.match(await client.waitFor((f) => f.id === 2), { type: 'authenticated', user: { sub: 'bob' } })
  client.send({ op: 'subscribe', channel: 'users.alice.votes', id: 3 })
  t.match(await client.waitFor((f) => f.id === 3), { code: 'forbidden' })
})

t.test('the handshake takes a token in the query string, and nothing else there', async (t) => {
  const { ws } = await listen(t)
  const client = await SyncClient.connect(t, ws, { token: await token('querier'), via: 'query' })
  t.match(client.frames[0], { type: 'welcome', user: { sub: 'querier', role: 'user' } })
  await t.rejects(SyncClient.open(t, `${ws}?token=x&debug=1`), /400/, 'an unknown query parameter is a 400 on the upgrade')
})

t.test('a client that keeps sending garbage is closed; binary frames are refused', async (t) => {
  const { ws } = await listen(t)
  const client = await SyncClient.connect(t, ws)
  client.ws.send(Buffer.from([1, 2, 3]), { binary: true })
  t.match(await client.waitFor((f) => f.code === 'bad_request'), { message: /text/ })
  for (let i = 0; i < 10; i++) client.send('nope')
  t.equal((await client.closedWithin()).code, 1008)
})

t.test('stats count connections, frames, outcomes and closes; observers get samples', async (t) => {
  const { app, ws } = await listen(t)
  const samples = { fanout: 0, delivery: 0, frameOut: 0 }
  app.syncStats.observers.add({
    fanout: () => { samples.fanout++ },
    delivery: (s) => { if (s >= 0) samples.delivery++ },
    frameOut: () => { samples.frameOut++ }
  })
  const logo = await app.logos.createLogo({ title: 'Counted', imageUrl: 'https://img.test/c.png' })
  const clients = await Promise.all([0, 1, 2].map(() => SyncClient.connect(t, ws)))
  for (const c of clients) await c.subscribe(`logos.${logo._id}`, 1)
  t.equal(app.syncStats.connections, 3)
  t.equal(app.syncStats.subscriptions, 3)
  t.equal(app.syncStats.channels, 1)
  t.equal(app.syncStats.resyncs.current, 3)
  const broadcasts = app.syncStats.broadcasts
  await app.logos.updateLogo(logo._id, { title: 'Counted again' })
  await Promise.all(clients.map((c) => c.until(() => c.state.version(`logos.${logo._id}`) === 2, 5000, 'update')))
  t.equal(app.syncStats.broadcasts - broadcasts, 1, 'one serialisation for three recipients (the list has no subscriber: nothing built)')
  t.ok(samples.fanout >= 1 && samples.delivery >= 1 && samples.frameOut > 3)
  t.equal(new Set(clients.map((c) => c.raw.at(-1))).size, 1, 'the same bytes to all three')
  clients[0].close()
  await clients[0].closedWithin()
  await sleep(50)
  t.equal(app.syncStats.connections, 2)
  t.equal(app.syncStats.disconnects['1005'] ?? app.syncStats.disconnects['1000'], 1, 'the close is counted by code')
  t.ok(app.syncStats.framesInByOp.subscribe >= 3)
  t.ok(app.syncStats.bytesOut > 0)
})

t.test('an open connection keeps nothing of its upgrade request alive (headers, reply, logger: ~4 KB each)', async (t) => {
  const { app, ws } = await listen(t)
  v8.setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const requests: WeakRef<object>[] = []
  app.server.on('upgrade', (req: object) => { requests.push(new WeakRef(req)) })
  const clients = [await SyncClient.connect(t, ws), await SyncClient.connect(t, ws, { token: await token('keeper') })]
  await clients[1].subscribe('logos')
  t.equal(requests.length, 2)
  // deref() keeps its target alive until the current job ends: collect in a job of its own.
  const collected = () => requests.map((r) => r.deref() === undefined)
  for (let i = 0; i < 10 && !collected().every(Boolean); i++) {
    await sleep(20)
    gc()
    await sleep(20)
  }
  t.same(collected(), [true, true], 'both upgrade requests were collected')
  for (const c of clients) await c.barrier()
  t.ok(clients.every((c) => c.isOpen), 'while both connections stay open and answer')
})
