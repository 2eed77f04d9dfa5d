// Two real server processes (`tsx src/server.ts`) on the real PostgreSQL, alone (the LISTEN/NOTIFY
// bus, no L2) and with Redis (the Redis bus and L2), with a TTL of ten minutes so only the bus can
// keep L1 right. What each replica's cache holds is read through GET /_debug/cache/entry
// (CACHE_DEBUG_ROUTES, test and development only): its L1 entry as held in memory, and the raw L2
// entry in Redis. Load shedding is off: 1,000 requests at once on a shared test machine would
// otherwise get 503s, which is load shedding's job, not the cache's.
import { isDeepStrictEqual } from 'node:util'
import t, { type Test } from 'tap'
import { createPostgresStore } from '../src/store/postgres.js'
import { PG_URL, SCALED_MODES, bearer, eventually, scaledEnv, startServer, token, type ScaledMode, type ServerProcess, type TestLike } from './helper.js'

interface Logo { _id: string, title: string, totalVotes: number, version: number }
interface Entry { l1: { version: number, floor: boolean, value?: Logo } | null, l2: { v: number, d?: Logo } | null }

const json = async <T> (res: Response | Promise<Response>): Promise<T> => await (await res).json() as T

type Replicas = Awaited<ReturnType<typeof replicas>>

async function replicas (t: TestLike, mode: ScaledMode) {
  const env = await scaledEnv(t, { CACHE_TTL_MS: '600000', CACHE_DEBUG_ROUTES: 'true', RATE_LIMIT_MAX: '1000000', VOTE_RATE_LIMIT: '1000000' }, mode)
  const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])
  const store = await createPostgresStore({ connectionString: PG_URL, schema: env.DATABASE_SCHEMA! })
  t.teardown(() => store.close())
  return { a, b, store }
}

const admin = async () => bearer(await token('root', 'admin'))
const post = (server: ServerProcess, path: string, headers: Record<string, string>, body?: unknown) => fetch(server.http + path, {
  method: 'POST', headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {})
})
const patch = (server: ServerProcess, path: string, headers: Record<string, string>, body: unknown) =>
  fetch(server.http + path, { method: 'PATCH', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) })
const entry = (server: ServerProcess, key: string) => json<Entry>(fetch(`${server.http}/_debug/cache/entry?key=${key}`))
const stats = (server: ServerProcess) => json<{ store: { logo: number }, l1: { hits: number } }>(fetch(`${server.http}/_debug/cache`))

/**
 * Reads through the other replica until it answers `want`, then asserts it. The bus delivers in
 * milliseconds (after the writer's response with NOTIFY, around it with Redis); the bound is
 * seconds and the TTL ten minutes, so only the bus can make this pass.
 */
async function readsBack<T> (t: Test, read: () => Promise<T>, want: T, message: string) {
  let got: T | undefined
  await eventually(async () => {
    got = await read()
    return isDeepStrictEqual(got, want)
  }, 5000)
  t.same(got, want, message)
}

const logoOn = (server: ServerProcess, id: string) => json<Logo>(fetch(`${server.http}/logos/${id}`))
const listOn = (server: ServerProcess) => json<{ items: Logo[] }>(fetch(`${server.http}/logos`))

async function editsAndVotesReadThroughTheOther (t: Test, { a, b }: Replicas) {
  const root = await admin()
  const logo = await json<Logo>(post(a, '/logos', root, { title: 'Original', imageUrl: 'https://x.test/o.png' }))
  t.equal((await logoOn(b, logo._id)).title, 'Original')
  t.equal((await entry(b, `logo:${logo._id}`)).l1?.version, 1, 'B holds version 1 in L1, good for ten minutes')

  await patch(a, `/logos/${logo._id}`, root, { title: 'Edited on A' })
  await readsBack(t, async () => (await logoOn(b, logo._id)).title, 'Edited on A', 'edit through A, read through B')

  const vote = await json<{ totalVotes: number, version: number }>(post(a, `/logos/${logo._id}/votes`, bearer(await token('alice'))))
  t.same(vote, { logoId: logo._id, totalVotes: 1, voted: true, version: 3 })
  await readsBack(t, async () => (await logoOn(b, logo._id)).totalVotes, 1, 'vote through A, GET /logos/:id through B')
  t.same(await json(fetch(`${b.http}/logos/${logo._id}/votes`)), { logoId: logo._id, totalVotes: 1, version: 3 })
  t.equal((await listOn(b)).items.find((l) => l._id === logo._id)?.totalVotes, 1, 'and the list through B')

  // Back and forth, every write read on the other side.
  for (let i = 0; i < 20; i++) {
    const [writer, reader] = i % 2 ? [b, a] : [a, b]
    if (i % 3 === 0) {
      await patch(writer, `/logos/${logo._id}`, root, { title: `Title ${i}` })
      await readsBack(t, async () => (await logoOn(reader, logo._id)).title, `Title ${i}`, `edit ${i}`)
    } else {
      const r = await json<{ totalVotes: number }>(post(writer, `/logos/${logo._id}/votes`, bearer(await token(`user${i}`))))
      await readsBack(t, async () => (await logoOn(reader, logo._id)).totalVotes, r.totalVotes, `vote ${i}`)
      t.equal((await listOn(reader)).items.find((l) => l._id === logo._id)?.totalVotes, r.totalVotes, `vote ${i} in the list`)
    }
  }

  // Create and delete show up in the other replica's list too.
  const second = await json<Logo>(post(b, '/logos', root, { title: 'Second', imageUrl: 'https://x.test/s.png' }))
  await readsBack(t, async () => (await listOn(a)).items.map((l) => l._id), [logo._id, second._id], 'created through B, listed through A')
  t.equal((await fetch(`${a.http}/logos/${logo._id}`, { method: 'DELETE', headers: root })).status, 204)
  await readsBack(t, async () => (await listOn(b)).items.map((l) => l._id), [second._id], 'deleted through A, gone from the list through B')
  t.equal((await fetch(`${b.http}/logos/${logo._id}`)).status, 404)
}

async function racingWritesEndAtOneVersion (t: Test, { a, b, store }: Replicas, mode: ScaledMode) {
  const root = await admin()
  const logo = await json<Logo>(post(a, '/logos', root, { title: 'Contested', imageUrl: 'https://x.test/c.png' }))
  await Promise.all([a, b].map((s) => fetch(`${s.http}/logos/${logo._id}`).then((r) => r.arrayBuffer())))

  const writes: Promise<Response>[] = []
  for (let i = 0; i < 60; i++) {
    const server = i % 2 ? b : a
    writes.push(post(server, `/logos/${logo._id}/votes`, bearer(await token(`racer${i}`))))
    if (i % 10 === 0) writes.push(patch(server === a ? b : a, `/logos/${logo._id}`, root, { title: `Race ${i}` }))
  }
  const statuses = (await Promise.all(writes)).map((r) => r.status)
  t.ok(statuses.every((s) => s === 200), 'every write accepted')

  const truth = (await store.getLogo(logo._id))!
  t.equal(truth.totalVotes, 60)
  t.equal(truth.version, 1 + 60 + 6)

  // Every write has been answered, so every event is on its way; give delivery a moment.
  const deadline = Date.now() + 5_000
  let entries: Entry[] = []
  for (;;) {
    entries = await Promise.all([a, b].map((s) => entry(s, `logo:${logo._id}`)))
    if (entries.every((e) => e.l1?.version === truth.version) || Date.now() > deadline) break
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  for (const [i, e] of entries.entries()) {
    t.equal(e.l1?.version, truth.version, `replica ${'AB'[i]} L1 at the store's version`)
    if (mode === 'redis') t.equal(e.l2?.v, truth.version, 'L2 at the store\'s version')
    else t.equal(e.l2, null, 'no L2 without Redis')
  }
  // A floor (a gap that could not be patched) is a miss: a read fills it from L2 or the store.
  for (const server of [a, b]) t.same(await json(fetch(`${server.http}/logos/${logo._id}`)), truth)
  for (const [i, e] of (await Promise.all([a, b].map((s) => entry(s, `logo:${logo._id}`)))).entries()) {
    t.same(e.l1?.value, truth, `replica ${'AB'[i]} L1 holds exactly the stored logo`)
    if (mode === 'postgres') continue
    if (e.l2?.d) t.same(e.l2.d, truth, 'and so does L2')
    else t.same(e.l2, { v: truth.version }, 'or L2 holds a floor at that version')
  }
}

async function coldKeyReadOncePerProcess (t: Test, { a, b, store }: Replicas, mode: ScaledMode) {
  const cold = await store.createLogo({ title: 'Cold', imageUrl: 'https://x.test/cold.png' }) // no cache has heard of it
  const before = await Promise.all([a, b].map(stats))
  const responses = await Promise.all([a, b].flatMap((server) =>
    Array.from({ length: 500 }, () => fetch(`${server.http}/logos/${cold._id}`).then(async (r) => ({ status: r.status, body: await r.json() as Logo })))))
  const statuses = responses.reduce<Record<number, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {})
  t.same(statuses, { 200: 1000 }, '1000 × 200')
  t.ok(responses.every((r) => r.body._id === cold._id))
  const after = await Promise.all([a, b].map(stats))
  const reads = after.map((s, i) => s.store.logo - before[i].store.logo)
  t.ok(reads.every((n) => n <= 1), `store reads per process: ${reads.join(', ')}`)
  t.ok(reads[0] + reads[1] >= 1, 'someone read it (the other may have found it in L2)')
  if (mode === 'postgres') t.same(reads, [1, 1], 'without L2, each process read it once')
}

// Each mode's two replicas serve its three tests, in order, each on logos of its own (the first
// one's list checks see only its own: it runs first, on a new schema).
for (const mode of SCALED_MODES) {
  t.test(`${mode} bus`, async (t) => {
    const cluster = await replicas(t, mode)
    await t.test('an edit or a vote through one replica is read through the other, TTL 10 min', (t) => editsAndVotesReadThroughTheOther(t, cluster))
    await t.test('racing writes through both replicas leave L1, L2 and the store at one final version', (t) => racingWritesEndAtOneVersion(t, cluster, mode))
    await t.test('500 concurrent GET /logos/:id on a cold key: one store read per process', (t) => coldKeyReadOncePerProcess(t, cluster, mode))
  })
}
