// The cache inside the real app (in-process) on real PostgreSQL + Redis, and on the embedded
// SQLite default: reads through the cache, write-through, ETag/304, the list after votes,
// single-flight on a cold key, counters.
import t from 'tap'
import { createPostgresStore } from '../src/store/postgres.js'
import { PG_URL, bearer, build, eventually, listen, scaledEnv, token, type TestLike } from './helper.js'

const logoBody = (title: string) => ({ title, imageUrl: 'https://x.test/logo.png' })

async function scaledApp (t: TestLike, extra: Record<string, string> = {}) {
  const env = await scaledEnv(t, { RATE_LIMIT_MAX: '100000', VOTE_RATE_LIMIT: '100000', CACHE_DEBUG_ROUTES: 'true', ...extra })
  const { app, http } = await listen(t, env)
  return { app, http, env }
}

/** A store of the test's own on the app's schema: writes the app's cache knows nothing about. */
async function sideStore (t: TestLike, schema: string) {
  const store = await createPostgresStore({ connectionString: PG_URL, schema })
  t.teardown(() => store.close())
  return store
}

t.test('reads go through L1 after a write-through; L2 holds the same version', async (t) => {
  const { app } = await scaledApp(t)
  const admin = bearer(await token('root', 'admin'))
  const created = await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: logoBody('Cached') })
  t.equal(created.statusCode, 201)
  const logo = created.json()
  const before = app.cacheStats()
  const res = await app.inject(`/logos/${logo._id}`)
  t.same(res.json(), logo)
  const after = app.cacheStats()
  t.equal(after.store.reads, before.store.reads, 'no store read: the create wrote through')
  t.equal(after.l1.hits, before.l1.hits + 1)
  const entry = (await app.inject(`/_debug/cache/entry?key=logo:${logo._id}`)).json()
  t.equal(entry.l1.version, logo.version)
  t.equal(entry.l2.v, logo.version)
  t.same(entry.l2.d, logo)
})

t.test('ETag from the version; If-None-Match gives 304 until a vote or an edit moves it', async (t) => {
  const { app } = await scaledApp(t)
  const admin = bearer(await token('root', 'admin'))
  const alice = bearer(await token('alice'))
  const logo = (await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: logoBody('Tagged') })).json()

  const first = await app.inject(`/logos/${logo._id}`)
  const etag = first.headers.etag as string
  t.match(etag, /^W\/".+\.1"$/)
  t.equal((await app.inject({ url: `/logos/${logo._id}`, headers: { 'if-none-match': etag } })).statusCode, 304)
  const votesTag = (await app.inject(`/logos/${logo._id}/votes`)).headers.etag as string
  t.equal((await app.inject({ url: `/logos/${logo._id}/votes`, headers: { 'if-none-match': votesTag } })).statusCode, 304)
  const listTag = (await app.inject('/logos')).headers.etag as string
  t.equal((await app.inject({ url: '/logos', headers: { 'if-none-match': listTag } })).statusCode, 304)

  const voted = await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: alice })
  t.same(voted.json(), { logoId: logo._id, totalVotes: 1, voted: true, version: 2 })

  const again = await app.inject({ url: `/logos/${logo._id}`, headers: { 'if-none-match': etag } })
  t.equal(again.statusCode, 200, 'the vote moved the version')
  t.equal(again.json().totalVotes, 1)
  t.not(again.headers.etag, etag)
  const votes = await app.inject({ url: `/logos/${logo._id}/votes`, headers: { 'if-none-match': votesTag } })
  t.equal(votes.statusCode, 200)
  t.same(votes.json(), { logoId: logo._id, totalVotes: 1, version: 2 })
  const list = await app.inject({ url: '/logos', headers: { 'if-none-match': listTag } })
  t.equal(list.statusCode, 200)
  t.equal(list.json().items[0].totalVotes, 1)

  const edited = await app.inject({ method: 'PATCH', url: `/logos/${logo._id}`, headers: admin, payload: { title: 'Retagged' } })
  t.equal(edited.json().version, 3)
  const read = await app.inject({ url: `/logos/${logo._id}`, headers: { 'if-none-match': again.headers.etag as string } })
  t.equal(read.statusCode, 200)
  t.equal(read.json().title, 'Retagged')
})

t.test('the list stays exact through votes, edits, creates and deletes', async (t) => {
  const { app } = await scaledApp(t)
  const admin = bearer(await token('root', 'admin'))
  const ids: string[] = []
  for (const title of ['A', 'B', 'C']) ids.push((await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: logoBody(title) })).json()._id)
  const list = async () => (await app.inject('/logos')).json().items as { _id: string, title: string, totalVotes: number, version: number }[]
  t.same((await list()).map((l) => l.title), ['A', 'B', 'C'])

  // Concurrent votes from many users: every list read afterwards shows the exact count.
  await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const user = bearer(await token(`u${i}`))
    await app.inject({ method: 'POST', url: `/logos/${ids[i % 2]}/votes`, headers: user })
  }))
  const counts = await list()
  t.same(counts.map((l) => l.totalVotes), [20, 20, 0])
  t.same(counts.map((l) => l.version), [21, 21, 1])
  const storeReadsBefore = app.cacheStats().store.reads
  await list()
  t.equal(app.cacheStats().store.reads, storeReadsBefore, 'served from the cache')

  await app.inject({ method: 'PATCH', url: `/logos/${ids[2]}`, headers: admin, payload: { title: 'C2' } })
  t.same((await list()).map((l) => l.title), ['A', 'B', 'C2'])
  const d = (await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: logoBody('D') })).json()
  t.same((await list()).map((l) => l.title), ['A', 'B', 'C2', 'D'])
  t.equal((await app.inject({ method: 'DELETE', url: `/logos/${ids[0]}`, headers: admin })).statusCode, 204)
  t.same((await list()).map((l) => l.title), ['B', 'C2', 'D'])
  t.equal((await app.inject(`/logos/${ids[0]}`)).statusCode, 404, 'deleted: evicted, not served from the cache')
  const entry = (await app.inject(`/_debug/cache/entry?key=logo:${ids[0]}`)).json()
  t.same(entry.l2, { v: 22 }, 'a tombstone in L2 at the deletion version (the row was at 21)')
  t.same(entry.l1, { version: 22, floor: true, fresh: false }, 'and in L1')
  t.equal((await app.inject(`/logos/${d._id}/votes`)).json().totalVotes, 0)
})

t.test('the deadline reads through the cache and moves with its own version', async (t) => {
  const { app } = await scaledApp(t)
  const admin = bearer(await token('root', 'admin'))
  t.equal((await app.inject('/voting')).json().deadline, null)
  const deadline = new Date(Date.now() + 3600_000).toISOString()
  await app.inject({ method: 'PUT', url: '/voting/deadline', headers: admin, payload: { deadline } })
  const reads = app.cacheStats().store.deadline
  t.equal((await app.inject('/voting')).json().deadline, deadline)
  t.equal(app.cacheStats().store.deadline, reads, 'written through, read from L1')
})

t.test('500 concurrent GET /logos/:id on a cold key: one store read per replica', async (t) => {
  const { app, http, env } = await scaledApp(t)
  const second = await listen(t, env) // a second replica on the same store and Redis
  const store = await sideStore(t, env.DATABASE_SCHEMA!)
  const cold = await store.createLogo(logoBody('Cold')) // neither replica's cache has heard of it
  const hammer = (base: string) => Promise.all(Array.from({ length: 500 }, () => fetch(`${base}/logos/${cold._id}`).then(async (r) => ({ status: r.status, body: await r.json() as { _id: string } }))))

  const readsBefore = app.cacheStats().store.logo
  const results = await hammer(http)
  t.ok(results.every((r) => r.status === 200 && r.body._id === cold._id), '500 × 200')
  t.equal(app.cacheStats().store.logo - readsBefore, 1, 'one store read on the first replica')
  t.ok(app.cacheStats().flights.joined >= 499 - app.cacheStats().l1.hits, 'the rest joined the flight or hit L1')

  const secondBefore = second.app.cacheStats()
  const again = await hammer(second.http)
  t.ok(again.every((r) => r.status === 200))
  t.equal(second.app.cacheStats().store.logo - secondBefore.store.logo, 0, 'the second replica is served by L2')
  t.equal(second.app.cacheStats().l2.hits - secondBefore.l2.hits, 1, 'with one L2 read')

  // Both replicas cold at once (L2 too): at most one store read each.
  const both = await store.createLogo(logoBody('Cold both'))
  const a0 = app.cacheStats().store.logo
  const b0 = second.app.cacheStats().store.logo
  await Promise.all([http, second.http].map((base) => Promise.all(Array.from({ length: 500 }, () => fetch(`${base}/logos/${both._id}`).then((r) => r.arrayBuffer())))))
  const a1 = app.cacheStats().store.logo - a0
  const b1 = second.app.cacheStats().store.logo - b0
  t.ok(a1 <= 1 && b1 <= 1 && a1 + b1 >= 1, `store reads per replica: ${a1}, ${b1}`)
})

t.test('a second replica serves what the first wrote without a store read', async (t) => {
  const { app, env } = await scaledApp(t)
  const second = await build(t, env)
  const admin = bearer(await token('root', 'admin'))
  const logo = (await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: logoBody('Shared') })).json()
  const before = second.cacheStats().store.reads
  t.same((await second.inject(`/logos/${logo._id}`)).json(), logo)
  t.equal(second.cacheStats().store.reads, before, 'from its L1 (the bus event) or from L2, never the store')

  // A replica starting cold builds the list from L2: the index, then every item in one MGET.
  for (const title of ['Two', 'Three']) await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: logoBody(title) })
  const expected = (await app.inject('/logos')).json()
  const third = await build(t, env)
  t.same((await third.inject('/logos')).json(), expected)
  const stats = third.cacheStats()
  t.equal(stats.store.reads, 0, 'no store read at all')
  t.equal(stats.l2.hits, 4, 'the index and three items from L2')
})

t.test('embedded mode (SQLite, no Redis): L1 only, same behaviour', async (t) => {
  const app = await build(t, { RATE_LIMIT_MAX: '100000' })
  const admin = bearer(await token('root', 'admin'))
  const logo = (await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: logoBody('Embedded') })).json()
  await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(await token('bob')) })
  t.equal((await app.inject(`/logos/${logo._id}`)).json().totalVotes, 1)
  t.equal((await app.inject('/logos')).json().items[0].totalVotes, 1)
  const stats = app.cacheStats()
  t.equal(stats.l2.enabled, false)
  t.equal(stats.l2.hits + stats.l2.misses + stats.l2.errors, 0)
  t.equal((await app.inject('/_debug/cache')).statusCode, 404, 'debug routes are off unless asked for')
  const production = await build(t, { NODE_ENV: 'production', CACHE_DEBUG_ROUTES: 'true' })
  t.equal((await production.inject('/_debug/cache')).statusCode, 404, 'and never registered in production')
})

t.test('stale-while-revalidate: a stale logo is served at once and refreshed once', async (t) => {
  const env = await scaledEnv(t, { CACHE_STRATEGY: 'stale-while-revalidate', CACHE_TTL_MS: '1000', CACHE_STALE_MS: '60000', RATE_LIMIT_MAX: '100000' })
  const app = await build(t, env)
  const store = await sideStore(t, env.DATABASE_SCHEMA!)
  const admin = bearer(await token('root', 'admin'))
  const logo = (await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: logoBody('Before') })).json()
  await store.updateLogo(logo._id, { title: 'Behind the cache' }) // a change no event announced
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const reads = app.cacheStats().store.logo
  const served = await Promise.all(Array.from({ length: 50 }, () => app.inject(`/logos/${logo._id}`)))
  t.ok(served.every((r) => r.json().title === 'Before'), 'stale value served without waiting')
  // The refresh runs in the background: wait for its result (bounded), then count the reads.
  t.ok(await eventually(async () => (await app.inject(`/logos/${logo._id}`)).json().title === 'Behind the cache', 5_000), 'refreshed in the background (within less than a TTL, so no second refresh is due)')
  t.equal(app.cacheStats().store.logo - reads, 1, 'one background refresh')

  // The list's index the same way: a logo created behind the cache shows up after one refresh.
  await app.inject('/logos')
  const hidden = await store.createLogo(logoBody('Created behind the cache'))
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const lists = app.cacheStats().store.list
  const stale = await Promise.all(Array.from({ length: 20 }, () => app.inject('/logos')))
  t.ok(stale.every((r) => r.json().items.length === 1), 'stale index served at once')
  const ids = async () => (await app.inject('/logos')).json().items.map((l: { _id: string }) => l._id)
  t.ok(await eventually(async () => (await ids()).length === 2, 5_000), 'the index refreshed in the background')
  t.equal(app.cacheStats().store.list - lists, 1, 'one background refresh of the index')
  t.same(await ids(), [logo._id, hidden._id])
})
