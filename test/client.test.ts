// LogoSyncClient against the real server: a restart on the same port (state right afterwards,
// one subscription per channel on the server), a token refresh on a live connection, a 4001
// and the REST helpers. Scaled mode (PostgreSQL + Redis) so a second replica can change things
// while the client's server is down.
import type { FastifyInstance } from 'fastify'
import { test } from 'tap'
import { WebSocket } from 'ws'
import { LogoSyncClient, tokenExpiry, type Logo, type LogoSyncClientOptions, type SyncError } from '@logo-sync/client'
import { until } from './fixtures/fake-sync-server.js'
import { bearer, build, freePort, listen, scaledEnv, startServer, tempDir, token, type TestLike } from './helper.js'

/** A loaded CI box lags its event loop now and then; these tests are not about load shedding. */
const admin = async () => bearer(await token('admin', 'admin'))
const logoBody = (title: string) => ({ title, imageUrl: `https://example.com/${title}.png` })

function newClient (t: TestLike, url: string, opts: Partial<LogoSyncClientOptions> = {}) {
  const c = new LogoSyncClient({ url, WebSocket, reconnect: { minDelayMs: 20, baseDelayMs: 100, maxDelayMs: 400 }, ...opts })
  t.teardown(() => c.close())
  return c
}

/** What the client saw and sent, printed when the test fails. */
function trace (t: TestLike & { passing (): boolean }, c: LogoSyncClient) {
  const log: string[] = []
  const at = () => new Date().toISOString().slice(11, 23)
  c.on('status', (s, info) => log.push(`${at()} status ${s} ${JSON.stringify(info)}`))
  c.on('error', (e) => log.push(`${at()} error ${e.code} ${e.message}`))
  c.on('frame', (f) => log.push(`${at()} <- ${JSON.stringify(f).slice(0, 160)}`))
  c.on('send', (f) => log.push(`${at()} -> ${JSON.stringify(f).slice(0, 160)}`))
  t.teardown(() => { if (!t.passing()) console.error(`client trace:\n${log.join('\n')}`) })
}

async function createLogo (app: FastifyInstance, title: string): Promise<Logo> {
  const res = await app.inject({ method: 'POST', url: '/logos', headers: await admin(), payload: logoBody(title) })
  if (res.statusCode !== 201) throw new Error(`create ${title}: ${res.statusCode} ${res.body}`)
  return res.json()
}

async function listenOn (t: TestLike, env: Record<string, string | undefined>, port: number): Promise<FastifyInstance> {
  const app = await build(t, env)
  await app.listen({ port, host: '127.0.0.1' })
  return app
}

test('survives its server stopping and starting again on the same port: exact state, one subscription per channel', async (t) => {
  const env = await scaledEnv(t)
  const other = await listen(t, env)
  const [l1, l2] = [await createLogo(other.app, 'one'), await createLogo(other.app, 'two')]
  const port = await freePort()
  let server = await listenOn(t, env, port)

  const c = newClient(t, `ws://127.0.0.1:${port}/sync`, { getToken: () => token('alice') })
  const calls: Record<string, number> = {}
  const channels = ['logos', `logos.${l1._id}`, `logos.${l1._id}.votes`, 'voting.deadline', 'users.alice.votes']
  // Several callbacks per channel: still one subscription each on the wire.
  for (const [i, ch] of channels.entries()) {
    for (let k = 0; k <= i % 3; k++) c.subscribe(ch, () => { calls[ch] = (calls[ch] ?? 0) + 1 })
  }
  const sent: Record<string, unknown>[] = []
  c.on('send', (f) => sent.push(f))
  const received: { channel?: string, type: string }[] = []
  c.on('frame', (f) => received.push(f as { channel?: string, type: string }))
  await until(() => channels.every((ch) => c.getState(ch).status === 'ready'), 10_000, 'first state')
  t.equal(server.syncStats.subscriptions, channels.length, 'one server-side subscription per channel')
  t.equal(server.syncStats.framesInByOp.subscribe, channels.length, 'one subscribe frame per channel')

  // A live change reaches the channel once, whatever the number of callbacks.
  received.length = 0
  await other.app.inject({ method: 'POST', url: `/logos/${l1._id}/votes`, headers: bearer(await token('bob')) })
  await until(() => c.get<number>(`logos.${l1._id}.votes`) === 1, 10_000, 'live vote')
  await c.ping()
  t.equal(received.filter((f) => f.channel === `logos.${l1._id}.votes`).length, 1, 'one frame for the change on the wire')

  const heldVersion = c.getState(`logos.${l1._id}`).version
  const statuses: string[] = []
  c.on('status', (s) => statuses.push(s))
  await server.close()
  await until(() => c.status === 'reconnecting', 10_000, 'client noticed')

  // While the client's server is down, everything moves on the other replica.
  const alice = bearer(await token('alice'))
  await other.app.inject({ method: 'POST', url: `/logos/${l1._id}/votes`, headers: alice })
  await other.app.inject({ method: 'PATCH', url: `/logos/${l1._id}`, headers: await admin(), payload: { title: 'one, renamed' } })
  await other.app.inject({ method: 'PUT', url: '/voting/deadline', headers: await admin(), payload: { deadline: '2031-01-01T00:00:00.000Z' } })
  await other.app.inject({ method: 'DELETE', url: `/logos/${l2._id}`, headers: await admin() })
  const l3 = await createLogo(other.app, 'three')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(c.status, 'reconnecting', 'still down: nothing listens on the port')

  sent.length = 0
  server = await listenOn(t, env, port)
  const truth = (await other.app.inject('/logos')).json().items as Logo[]
  const one = truth.find((l) => l._id === l1._id)!
  const listOf = (items: Logo[] | undefined) => JSON.stringify((items ?? []).map((l) => [l._id, l.version, l.totalVotes]))
  await until(() => c.get<Logo>(`logos.${l1._id}`)?.title === 'one, renamed' && listOf(c.get<Logo[]>('logos')) === listOf(truth) &&
    c.get('voting.deadline') === '2031-01-01T00:00:00.000Z' && c.get<number>(`logos.${l1._id}.votes`) === 2 &&
    (c.get<string[]>('users.alice.votes') ?? []).includes(l1._id), 10_000, 'state after the restart')

  t.same(c.get<Logo[]>('logos')!.map((l) => [l._id, l.version, l.totalVotes]), truth.map((l) => [l._id, l.version, l.totalVotes]), 'the list equals the store')
  t.same(c.get<Logo[]>('logos')!.map((l) => l._id), [l1._id, l3._id])
  t.equal(c.getState(`logos.${l1._id}`).version, one.version, 'logo at the stored version')
  t.same(c.get('users.alice.votes'), [l1._id])
  const subscribes = sent.filter((f) => f.op === 'subscribe')
  t.same(subscribes.map((f) => f.channel).sort(), [...channels].sort(), 'resubscribed each channel exactly once')
  t.equal(subscribes.find((f) => f.channel === `logos.${l1._id}`)!.since, heldVersion, 'with since = the version held')
  t.equal(server.syncStats.subscriptions, channels.length, 'the restarted server holds one subscription per channel')
  t.equal(server.syncStats.framesInByOp.subscribe, channels.length)
  t.ok(statuses.includes('reconnecting') && statuses.at(-1) === 'open', statuses.join(' → '))

  // And it is live again: the next change arrives once.
  received.length = 0
  await other.app.inject({ method: 'DELETE', url: `/logos/${l1._id}/votes`, headers: alice })
  await until(() => c.get<number>(`logos.${l1._id}.votes`) === 1, 10_000, 'live after the restart')
  await c.ping()
  t.equal(received.filter((f) => f.channel === `logos.${l1._id}.votes`).length, 1)
})

test('a server process killed outright (no close frame): the client reconnects to its successor', async (t) => {
  const dataDir = tempDir(t)
  const port = await freePort()
  const first = await startServer(t, { DATA_DIR: dataDir, SYNC_HEARTBEAT_MS: '500' }, { port })
  const created = await fetch(`${first.http}/logos`, { method: 'POST', headers: { ...(await admin()), 'content-type': 'application/json' }, body: JSON.stringify(logoBody('solo')) })
  const logo = await created.json() as Logo
  const c = newClient(t, first.ws, { getToken: () => token('carol') })
  trace(t, c)
  c.subscribe(`logos.${logo._id}.votes`, () => {})
  await until(() => c.getState(`logos.${logo._id}.votes`).status === 'ready', 10_000, 'first state')
  first.child.kill('SIGKILL')
  await until(() => c.status === 'reconnecting', 10_000, 'client noticed')
  const frames: { type: string, channel?: string }[] = []
  c.on('frame', (f) => frames.push(f as { type: string, channel?: string }))
  const second = await startServer(t, { DATA_DIR: dataDir, SYNC_HEARTBEAT_MS: '500' }, { port })
  await until(() => frames.some((f) => f.type === 'subscribed'), 10_000, 'resubscribed')
  t.equal(c.status, 'open')
  // Another client votes: the change must come over the wire, not from our own REST answer.
  const other = newClient(t, second.ws, { getToken: () => token('dan'), autoConnect: false })
  t.equal((await other.vote(logo._id)).totalVotes, 1)
  await until(() => frames.some((f) => f.channel === `logos.${logo._id}.votes` && f.type === 'updated'), 10_000, 'vote pushed')
  t.equal(c.get<number>(`logos.${logo._id}.votes`), 1)
  const metrics = await (await fetch(`${second.http}/metrics`)).text()
  t.match(metrics, /logo_sync_sync_num_subscriptions 1\b/, 'the successor holds exactly one subscription for this client')
})

test('refreshes its token on a live connection before it expires', async (t) => {
  const { app, ws } = await listen(t)
  const logo = await createLogo(app, 'fresh')
  const reasons: string[] = []
  const issued: string[] = []
  const c = newClient(t, ws, {
    tokenRefreshMarginMs: 1_500,
    getToken: async ({ reason }) => {
      reasons.push(reason)
      issued.push(await token('dave', 'user', { expiresIn: 3_000 + 1_000 * issued.length }))
      return issued.at(-1)
    }
  })
  trace(t, c)
  const frames: { type: string }[] = []
  c.on('frame', (f) => frames.push(f))
  const closes: (number | undefined)[] = []
  c.on('status', (s, info) => { if (s === 'reconnecting') closes.push(info.closeCode) })
  c.subscribe('users.dave.votes', () => {})
  await until(() => c.getState('users.dave.votes').status === 'ready', 10_000, 'private channel')
  const connectionId = c.connectionId
  await until(() => frames.some((f) => f.type === 'authenticated'), 10_000, 'in-band auth')
  const firstExpiry = tokenExpiry(issued[0])!
  t.ok(Date.now() < firstExpiry, 'refreshed before the first token expired')
  await new Promise((resolve) => setTimeout(resolve, firstExpiry - Date.now() + 700))
  t.equal(c.connectionId, connectionId, 'the same connection')
  t.same(closes, [], 'never closed (no 4001)')
  t.same(reasons.slice(0, 2), ['connect', 'refresh'])
  await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(await token('dave')) })
  await until(() => (c.get<string[]>('users.dave.votes') ?? []).includes(logo._id), 10_000, 'private channel still live')
  t.pass('private channel still live after the first token expired')
})

test('after a 4001 (token expired, no refresh to be had) it asks for a new token and reconnects', async (t) => {
  const { ws } = await listen(t)
  const reasons: string[] = []
  const short = await token('erin', 'user', { expiresIn: 1_200 })
  const c = newClient(t, ws, {
    // The auth service is "down" for refreshes: the same token comes back until the server refuses it.
    getToken: async ({ reason }) => { reasons.push(reason); return reason === 'unauthorized' ? token('erin') : short }
  })
  const closes: (number | undefined)[] = []
  c.on('status', (s, info) => { if (s === 'reconnecting') closes.push(info.closeCode) })
  c.subscribe('users.erin.votes', () => {})
  await until(() => c.getState('users.erin.votes').status === 'ready', 10_000, 'private channel')
  const first = c.connectionId
  await until(() => closes.includes(4001), 10_000, '4001')
  await until(() => c.status === 'open' && c.connectionId !== first && c.connectionId !== null, 10_000, 'reconnected')
  t.ok(reasons.includes('unauthorized'), `getToken heard why: ${reasons.join(', ')}`)
  t.same(c.user, { sub: 'erin', role: 'user' })
  await until(() => c.wiredChannels.includes('users.erin.votes') && c.getState('users.erin.votes').error === null, 10_000, 'resubscribed')
})

test('REST helpers: list, one, vote, unvote, voting; errors carry status and code', async (t) => {
  const { app, ws } = await listen(t)
  const logo = await createLogo(app, 'rest')
  const c = newClient(t, ws, { getToken: () => token('frank'), autoConnect: false })
  t.same((await c.getLogos()).map((l) => l._id), [logo._id])
  t.equal((await c.getLogo(logo._id)).title, 'rest')
  t.equal((await c.getLogo(logo._id)).title, 'rest', 'again (a 304 answered from the ETag cache)')
  t.match(await c.vote(logo._id), { logoId: logo._id, totalVotes: 1, voted: true })
  t.match(await c.vote(logo._id), { totalVotes: 1 }, 'idempotent')
  t.match(await c.unvote(logo._id), { totalVotes: 0, voted: false })
  const voting = await c.getVoting()
  t.equal(voting.open, true)
  t.ok(Math.abs(c.serverNow() - Date.now()) < 1_000, 'clock estimate from serverTime')
  const missing = await c.getLogo('nope').catch((e: SyncError) => e)
  t.match(missing, { name: 'SyncError', status: 404, code: 'http_error' })
  const anonymous = newClient(t, ws, { autoConnect: false })
  t.match(await anonymous.vote(logo._id).catch((e: SyncError) => e), { status: 401, code: 'unauthorized' })
  await app.inject({ method: 'PUT', url: '/voting/deadline', headers: await admin(), payload: { deadline: '2001-01-01T00:00:00.000Z' } })
  t.match(await c.vote(logo._id).catch((e: SyncError) => e), { status: 409, serverCode: 'voting_closed' })
})

test('a vote applies its own result to the channels held at once', async (t) => {
  const { app, ws } = await listen(t, { SYNC_CONFLATE_MS: '2000' })
  const logo = await createLogo(app, 'mine')
  const c = newClient(t, ws, { getToken: () => token('gina') })
  for (const ch of ['logos', `logos.${logo._id}.votes`, 'users.gina.votes']) c.subscribe(ch, () => {})
  await until(() => ['logos', `logos.${logo._id}.votes`, 'users.gina.votes'].every((ch) => c.getState(ch).status === 'ready'), 10_000, 'ready')
  await c.vote(logo._id)
  // Counts are conflated for 2 s on the server; the vote's own answer shows at once.
  t.equal(c.get<number>(`logos.${logo._id}.votes`), 1)
  t.equal(c.get<Logo[]>('logos')![0].totalVotes, 1)
  t.same(c.get('users.gina.votes'), [logo._id])
})

test('revalidate reads each channel over REST, and versions still win', async (t) => {
  const { app, ws } = await listen(t)
  const [kept, gone] = [await createLogo(app, 'kept'), await createLogo(app, 'gone')]
  await app.inject({ method: 'POST', url: `/logos/${kept._id}/votes`, headers: bearer(await token('hal')) })
  await app.inject({ method: 'DELETE', url: `/logos/${gone._id}`, headers: await admin() })
  const c = newClient(t, ws, { getToken: () => token('hal'), autoConnect: false })
  const channels = ['logos', `logos.${kept._id}`, `logos.${kept._id}.votes`, 'voting.deadline', 'users.hal.votes', `logos.${gone._id}`]
  for (const ch of channels) await c.revalidate(ch)
  t.same(c.get<Logo[]>('logos')!.map((l) => l._id), [kept._id])
  t.equal(c.get<Logo>(`logos.${kept._id}`)!.totalVotes, 1)
  t.equal(c.getState(`logos.${kept._id}`).version, 2, 'at the stored version')
  t.equal(c.get<number>(`logos.${kept._id}.votes`), 1)
  t.equal(c.get('voting.deadline'), null)
  t.same(c.get('users.hal.votes'), [kept._id])
  t.equal(c.getState(`logos.${gone._id}`).status, 'deleted', 'a 404 marks the logo deleted')
  t.equal(await c.revalidate('users.someone-else.votes'), undefined, "another user's private channel is not read with this token")
  t.equal(c.getState('users.someone-else.votes').status, 'pending')

  // A REST answer older than what is held changes nothing.
  const seen: number[] = []
  c.subscribe<number>(`logos.${kept._id}.votes`, (n) => seen.push(n))
  await new Promise((resolve) => setImmediate(resolve))
  const held = c.getState(`logos.${kept._id}.votes`)
  c.prime(`logos.${kept._id}.votes`, 99)
  t.equal(c.getState(`logos.${kept._id}.votes`), held, 'prime never overwrites what is held')
  await c.revalidate(`logos.${kept._id}.votes`)
  t.equal(c.getState(`logos.${kept._id}.votes`), held, 'same version: same state object')
  t.same(seen, [1], 'the callback heard the held value once, nothing for the no-op')
})
