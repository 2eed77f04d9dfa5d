// useSync at the level of SWR / TanStack Query, in React's test renderer against a real server
// (and, for frames the real server will not send on demand, a scripted one): a null channel,
// isLoading/isValidating, optimistic mutate that pushed frames cannot flicker back, rollback
// on 409 and on a network error, one REST read and one poll per channel however many
// components, provider defaults, Suspense, no re-render for equal data or unread fields, and
// channels forgotten once unused.
import { Component, Suspense, createElement as h, type ReactNode } from 'react'
import { create, type ReactTestRenderer } from 'react-test-renderer'
import t from 'tap'
import { WebSocket } from 'ws'
import { LogoSyncClient, tokenClaims, type LogoSyncClientOptions, type SyncError, type Logo } from '@logo-sync/client'
import { SyncProvider, useSync, type SyncResult } from '@logo-sync/client/react'
import { fakeSyncServer, until } from './fixtures/fake-sync-server.js'
import { freePort, startServer, tempDir, token, type ServerProcess, type TestLike } from './helper.js'

// Updates come from sockets and timers, outside act(): render as an app would and poll.
;(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false

/** REST requests, counted and optionally held (the request reaches the real server on release). */
class Requests {
  readonly log: { at: number, what: string }[] = []
  private gates: { match: RegExp, open: Promise<void> }[] = []

  readonly fetch: typeof globalThis.fetch = async (input, init) => {
    const what = `${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`
    this.log.push({ at: Date.now(), what })
    const gate = this.gates.find((g) => g.match.test(what))
    if (gate) await gate.open
    return globalThis.fetch(input, init)
  }

  /** Holds requests matching `match` until the returned function is called. */
  hold (match: RegExp): () => void {
    let open!: () => void
    const gate = { match, open: new Promise<void>((resolve) => { open = resolve }) }
    this.gates.push(gate)
    return () => {
      this.gates = this.gates.filter((g) => g !== gate)
      open()
    }
  }

  count (match: RegExp, since = 0): number { return this.log.filter((r) => r.at >= since && match.test(r.what)).length }
}

function client (t: TestLike, opts: LogoSyncClientOptions): LogoSyncClient {
  const c = new LogoSyncClient({ WebSocket, reconnect: { minDelayMs: 50, baseDelayMs: 100, maxDelayMs: 500 }, ...opts })
  t.teardown(() => c.close())
  return c
}

function mount (t: TestLike, c: LogoSyncClient, children: ReactNode, options?: object): ReactTestRenderer {
  const r = create(h(SyncProvider, { client: c, options }, children))
  t.teardown(() => r.unmount())
  return r
}

const demoServer = (t: TestLike) => startServer(t, { DATA_DIR: tempDir(t), SEED_DEMO_DATA: 'true' })
const firstLogo = async (server: ServerProcess, n = 0) => ((await (await fetch(`${server.http}/logos`)).json()) as { items: Logo[] }).items[n]
const vote = async (server: ServerProcess, id: string, sub: string, method = 'POST') =>
  (await fetch(`${server.http}/logos/${id}/votes`, { method, headers: { authorization: `Bearer ${await token(sub)}` } })).status

let shared: ServerProcess | null = null
t.before(async () => { shared = await demoServer(t) })
const server = () => shared!

t.test('useSync(null) subscribes to nothing and has no data; a channel given later subscribes', async (t) => {
  const requests = new Requests()
  const c = client(t, { url: server().ws, fetch: requests.fetch })
  const sent: string[] = []
  c.on('send', (f) => { if (f.op === 'subscribe') sent.push(String(f.channel)) })
  const seen: SyncResult<Logo[]>[] = []
  function View ({ channel }: { channel: string | null }) {
    seen.push(useSync<Logo[]>(channel, undefined, { fallbackData: [], revalidateOnMount: true, refreshInterval: 100 }))
    return null
  }
  const r = mount(t, c, h(View, { channel: null }))
  await until(() => c.status === 'open', 5_000, 'open')
  await c.ping()
  const last = seen.at(-1)!
  t.equal(last.data, undefined, 'no data, not even the fallback')
  t.equal(last.isLoading, false, 'and not loading')
  t.same(sent, [], 'no subscribe went out')
  t.same(c.heldChannels, [], 'the client holds no channel')
  t.equal(requests.log.length, 0, 'no REST read, no poll')

  r.update(h(SyncProvider, { client: c }, h(View, { channel: 'logos' })))
  await until(() => seen.at(-1)!.data?.length === 6, 5_000, 'the list')
  t.same(sent, ['logos'], 'a channel given later subscribes')
})

t.test('isLoading until the channel holds state; isValidating while a REST read is out, for every reader; unread fields do not re-render', async (t) => {
  const requests = new Requests()
  const c = client(t, { url: server().ws, fetch: requests.fetch })
  const id = (await firstLogo(server(), 1))._id
  const channel = `logos.${id}.votes`
  const flags: string[] = []
  let dataOnlyRenders = 0
  function Flags () {
    const { isLoading, isValidating, data } = useSync<number>(channel, undefined, { fallbackData: -1 })
    flags.push(`${isLoading}/${isValidating}/${data}`)
    return null
  }
  function DataOnly () {
    const { data } = useSync<number>(channel, undefined, { fallbackData: -1 })
    dataOnlyRenders += data === undefined ? 0 : 1
    return null
  }
  mount(t, c, [h(Flags, { key: 'f' }), h(DataOnly, { key: 'd' })])
  t.equal(flags[0], 'true/false/-1', 'nothing held yet: loading, the fallback shows')
  await until(() => flags.at(-1) === 'false/false/0', 5_000, 'the snapshot')
  const rendersBefore = dataOnlyRenders

  const release = requests.hold(/^GET \/logos\/[^/]+\/votes$/)
  const read = c.revalidate(channel)
  await until(() => flags.at(-1) === 'false/true/0', 5_000, 'validating')
  t.equal(c.revalidate(channel), read, 'a second read while one is out shares it')
  release()
  await read
  await until(() => flags.at(-1) === 'false/false/0', 5_000, 'validated')
  t.equal(requests.count(/^GET/), 1, 'one request')
  t.equal(dataOnlyRenders, rendersBefore, 'a component that reads only data did not re-render for validating, nor for equal data')
})

t.test('mutate: the optimistic count shows at once, pushed frames meanwhile cannot move it back, the result settles it', async (t) => {
  const requests = new Requests()
  const c = client(t, { url: server().ws, fetch: requests.fetch, getToken: () => token('ann') })
  const id = (await firstLogo(server(), 2))._id
  const channel = `logos.${id}.votes`
  const shown: number[] = []
  let mutate!: SyncResult<number>['mutate']
  function Count () {
    const r = useSync<number>(channel, undefined, { fallbackData: 0 })
    shown.push(r.data!)
    mutate = r.mutate
    return null
  }
  mount(t, c, h(Count))
  await until(() => c.getState(channel).status === 'ready', 5_000, 'the snapshot')
  const v0 = c.getState(channel).version!
  t.equal(shown.at(-1), 0)

  const release = requests.hold(/^POST /)
  const done = mutate(async () => (await c.vote(id)).totalVotes, { optimisticData: (n) => n! + 1, revalidate: false })
  await until(() => shown.at(-1) === 1, 2_000, 'the optimistic count')
  t.pass('the count moved before the server answered')
  // Meanwhile someone else votes and takes it back: the server pushes 1, then 0.
  t.equal(await vote(server(), id, 'bob'), 200)
  t.equal(await vote(server(), id, 'bob', 'DELETE'), 200)
  await until(() => c.getState(channel).version === v0 + 2, 5_000, 'both pushes applied underneath')
  t.equal(shown.at(-1), 1, 'still the optimistic count')
  release()
  t.equal(await done, 1, 'mutate resolves with the result')
  await until(() => c.getState(channel).version === v0 + 3, 5_000, 'the vote at its version')
  // The vote's own push (the same version) arrives after the answer: a ping's pong comes after it.
  await c.ping()
  t.equal(shown.at(-1), 1)
  const after = shown.slice(shown.indexOf(1))
  t.same([...new Set(after)], [1], `never back to 0 once it showed 1: ${shown.join(' ')}`)
})

t.test('mutate rolls back on a network error, and keeps the optimistic data with rollbackOnError: false', async (t) => {
  const closed = await freePort() // nothing listens there: the REST call fails for real
  const c = client(t, { url: server().ws, apiUrl: `http://127.0.0.1:${closed}`, getToken: () => token('cat') })
  const id = (await firstLogo(server(), 3))._id
  const channel = `logos.${id}.votes`
  const shown: number[] = []
  let mutate!: SyncResult<number>['mutate']
  function Count () {
    const r = useSync<number>(channel, undefined, { fallbackData: 0 })
    shown.push(r.data!)
    mutate = r.mutate
    return null
  }
  mount(t, c, h(Count))
  await until(() => c.getState(channel).status === 'ready', 5_000, 'the snapshot')
  const before = shown.at(-1)!
  const err = await mutate(async () => (await c.vote(id)).totalVotes, { optimisticData: (n) => n! + 1, revalidate: false }).catch((e: SyncError) => e)
  t.equal((err as SyncError).code, 'network_error', 'the error is thrown')
  t.ok(shown.includes(before + 1), 'the optimistic count showed')
  await until(() => shown.at(-1) === before, 2_000, `back to ${before}: ${shown.join(' ')}`)
  t.pass('and went back')

  await mutate(Promise.reject(new Error('nope')), { optimisticData: 42, rollbackOnError: false, revalidate: false }).catch(() => {})
  await until(() => shown.at(-1) === 42, 2_000, 'kept')
  t.equal(c.get(channel), 42, 'rollbackOnError: false keeps it')
})

t.test('50 components on one channel with the socket down: one REST read on mount, one poll per interval', async (t) => {
  const requests = new Requests()
  const closed = await freePort()
  const c = client(t, { url: `ws://127.0.0.1:${closed}/sync`, apiUrl: server().http, fetch: requests.fetch })
  const id = (await firstLogo(server(), 4))._id
  const channel = `logos.${id}.votes`
  const GET = new RegExp(`^GET /logos/${id}/votes$`)
  function Card () {
    useSync<number>(channel, undefined, { fallbackData: 0, refreshInterval: 400, revalidateOnMount: true })
    return null
  }
  mount(t, c, Array.from({ length: 50 }, (_, i) => h(Card, { key: i })))
  await until(() => c.getState(channel).status === 'ready', 5_000, 'the count over REST')
  t.equal(requests.count(GET), 1, 'revalidateOnMount: one request for 50 cards')
  const start = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 2_100))
  const polls = requests.log.filter((r) => r.at >= start && GET.test(r.what)).map((r) => r.at)
  t.ok(polls.length >= 3 && polls.length <= 6, `about one request per 400 ms interval in 2.1 s: ${polls.length} (not 50 per interval)`)
  const gaps = polls.slice(1).map((at, i) => at - polls[i])
  t.ok(gaps.every((g) => g >= 300), `never two requests within an interval: gaps ${gaps.join(', ')} ms`)
})

t.test('<SyncProvider options> sets defaults for every hook below, merged over a parent provider; a hook option wins', async (t) => {
  const requests = new Requests()
  const closed = await freePort()
  const c = client(t, { url: `ws://127.0.0.1:${closed}/sync`, apiUrl: server().http, fetch: requests.fetch })
  const [a, b] = [(await firstLogo(server(), 0))._id, (await firstLogo(server(), 1))._id]
  function Polled () { useSync<number>(`logos.${a}.votes`); return null }
  function NotPolled () { useSync<number>(`logos.${b}.votes`, undefined, { refreshInterval: 0 }); return null }
  function Mounted () { useSync<Logo[]>('logos'); return null }
  mount(t, c, [
    h(Polled, { key: 'p' }),
    h(NotPolled, { key: 'n' }),
    h(SyncProvider, { key: 'inner', options: { revalidateOnMount: true } }, h(Mounted))
  ], { refreshInterval: 200 })
  await until(() => requests.count(new RegExp(`^GET /logos/${a}/votes$`)) >= 2, 5_000, 'the provider default polls')
  t.equal(requests.count(new RegExp(`^GET /logos/${b}/votes$`)), 0, 'a hook option wins over the default')
  await until(() => requests.count(/^GET \/logos$/) >= 1, 5_000, 'the nested default')
  t.pass('a nested provider without a client adds defaults and uses the parent client')
})

/** What a renderer shows, for components that render plain text. */
const text = (r: ReactTestRenderer) => JSON.stringify(r.toJSON()).replace(/^"|"$/g, '')

class Boundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  override state = { error: null as Error | null }
  static getDerivedStateFromError (error: Error) { return { error } }
  override render () { return this.state.error ? `error: ${(this.state.error as SyncError).code}` : this.props.children }
}

t.test('suspense: the fallback shows until the channel holds state; a refused channel goes to the error boundary', async (t) => {
  const c = client(t, { url: server().ws })
  function Gallery () {
    const { data } = useSync<Logo[]>('logos', undefined, { suspense: true })
    return `${data.length} logos`
  }
  function Private () {
    const { data } = useSync<string[]>('users.bob.votes', undefined, { suspense: true })
    return `${data.length} votes`
  }
  const r = mount(t, c, h(Suspense, { fallback: 'loading' }, h(Gallery)))
  t.equal(text(r), 'loading', 'suspended first')
  await until(() => text(r) === '6 logos', 5_000, 'the list')
  t.pass('then the data')

  const p = mount(t, c, h(Boundary, null, h(Suspense, { fallback: 'loading' }, h(Private))))
  await until(() => text(p) === 'error: unauthorized', 5_000, `the error boundary (got ${text(p)})`)
  t.pass('an anonymous client asking for a private channel: the boundary shows why')
})

t.test('equal data keeps its identity and re-renders nothing (scripted server)', async (t) => {
  const fake = await fakeSyncServer(t)
  const c = client(t, { url: fake.url })
  const seen: unknown[] = []
  function Mine () {
    seen.push(useSync<string[]>('users.ann.votes').data)
    return null
  }
  mount(t, c, h(Mine))
  const conn = await fake.connection(0)
  await conn.waitFor((f) => f.op === 'subscribe')
  conn.send({ channel: 'users.ann.votes', type: 'snapshot', version: null, data: ['a', 'b'] })
  await until(() => (seen.at(-1) as string[] | undefined)?.length === 2, 2_000, 'the votes')
  const renders = seen.length
  const held = seen.at(-1)
  conn.send({ channel: 'users.ann.votes', type: 'snapshot', version: null, data: ['a', 'b'] })
  conn.send({ channel: 'users.ann.votes', type: 'updated', version: null, data: ['a', 'b'] })
  await c.ping()
  t.equal(seen.length, renders, 'no re-render for a whole channel sent again with equal data')
  t.equal(c.get('users.ann.votes'), held, 'the data kept its identity')
  conn.send({ channel: 'users.ann.votes', type: 'updated', version: null, data: ['a', 'c'] })
  await until(() => seen.length === renders + 1, 2_000, 'a real change')
  t.same(seen.at(-1), ['a', 'c'])
})

t.test('channels nothing uses are forgotten after channelTtlMs; channels in use are kept', async (t) => {
  const fake = await fakeSyncServer(t)
  const c = client(t, { url: fake.url, channelTtlMs: 300 })
  const offs = Array.from({ length: 100 }, (_, i) => c.subscribe(`logos.x${i}`, () => {}))
  const kept = c.subscribe('logos', () => {})
  const conn = await fake.connection(0)
  await until(() => conn.ops('subscribe').length === 101, 5_000, 'subscribed')
  for (const off of offs) off()
  c.prime('voting.deadline', '2030-01-01T00:00:00.000Z')
  t.equal(c.heldChannels.length, 102)
  await until(() => c.heldChannels.length === 1, 5_000, `released (${c.heldChannels.length} held)`)
  t.same(c.heldChannels, ['logos'], 'the one still subscribed stays')
  t.equal(c.get('voting.deadline'), undefined, 'a forgotten channel holds nothing')
  kept()
})

t.test('tokenClaims reads sub and exp without verifying', async (t) => {
  t.match(tokenClaims(await token('dora')), { sub: 'dora', exp: Number })
  t.equal(tokenClaims('not a token'), null)
})

t.test('mutate rolls back on 409 voting_closed', async (t) => {
  const own = await demoServer(t)
  const c = client(t, { url: own.ws, getToken: () => token('eve') })
  const id = (await firstLogo(own))._id
  const channel = `logos.${id}.votes`
  const shown: number[] = []
  let mutate!: SyncResult<number>['mutate']
  function Count () {
    const r = useSync<number>(channel, undefined, { fallbackData: 0 })
    shown.push(r.data!)
    mutate = r.mutate
    return null
  }
  mount(t, c, h(Count))
  await until(() => c.getState(channel).status === 'ready', 5_000, 'the snapshot')
  const closed = await fetch(`${own.http}/voting/deadline`, { method: 'PUT', headers: { authorization: `Bearer ${await token('root', 'admin')}`, 'content-type': 'application/json' }, body: JSON.stringify({ deadline: new Date(Date.now() - 60_000).toISOString() }) })
  t.equal(closed.status, 200, 'voting closed')
  const err = await mutate(async () => (await c.vote(id)).totalVotes, { optimisticData: (n) => n! + 1 }).catch((e: SyncError) => e)
  t.equal((err as SyncError).serverCode, 'voting_closed')
  t.ok(shown.includes(1), 'the optimistic count showed')
  await until(() => shown.at(-1) === 0, 2_000, `back to 0: ${shown.join(' ')}`)
  t.pass('and went back')
})
