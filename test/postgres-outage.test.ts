// PostgreSQL goes away under running apps (a private PostgreSQL of this test's own, never the
// shared one): every write answers 503 with Retry-After and a clear message, quickly, and changes
// nothing; reads of what is cached keep being served (L1 on the app that read it, L2 on another);
// once PostgreSQL is back everything works again with no restart.
import t from 'tap'
import { createPostgresStore } from '../src/store/postgres.js'
import { StoreUnavailableError } from '../src/store/types.js'
import { bearer, build, eventually, privatePostgres, redisPrefix, REDIS_URL, startNginx, startServer, token } from './helper.js'

interface Answer { statusCode: number, headers: Record<string, unknown>, json: () => { code?: string, message?: string } }

t.test('PostgreSQL stopped: writes 503 + Retry-After and change nothing, cached reads served, recovery by itself', async (t) => {
  const pgServer = await privatePostgres(t)
  const env = {
    DATABASE_URL: pgServer.url,
    DATABASE_SCHEMA: 'outage',
    REDIS_URL,
    REDIS_KEY_PREFIX: redisPrefix(),
    RATE_LIMIT_MAX: '100000',
    VOTE_RATE_LIMIT: '100000',
    DATABASE_CONNECT_TIMEOUT_MS: '2000'
  }
  const app = await build(t, env)
  const other = await build(t, env) // a second replica: its L1 is empty, L2 is shared
  const admin = bearer(await token('root', 'admin'))
  const alice = bearer(await token('alice'))
  const bob = bearer(await token('bob'))

  const create = (title: string) => app.inject({ method: 'POST', url: '/logos', headers: admin, payload: { title, imageUrl: `https://x.test/${title}.png` } })
  const kept = (await create('Kept')).json()
  const gone = (await create('Doomed')).json()
  t.equal((await app.inject({ method: 'POST', url: `/logos/${kept._id}/votes`, headers: alice })).statusCode, 200)
  const deadline = new Date(Date.now() + 3_600_000).toISOString()
  t.equal((await app.inject({ method: 'PUT', url: '/voting/deadline', headers: admin, payload: { deadline } })).statusCode, 200)
  // Reads that fill the cache: L1 of `app`, and L2 (shared) for `other`.
  const before = {
    list: (await app.inject('/logos')).json(),
    logo: (await app.inject(`/logos/${kept._id}`)).json(),
    votes: (await app.inject(`/logos/${kept._id}/votes`)).json(),
    voting: (await app.inject('/voting')).json()
  }
  t.equal(before.logo.totalVotes, 1)

  await pgServer.stop()
  t.ok(await eventually(async () => (await app.inject('/readyz')).statusCode === 503, 10_000), '/readyz says the store is down')

  const writes: [string, () => Promise<Answer>][] = [
    ['POST /logos', () => create('Never')],
    ['PATCH /logos/:id', () => app.inject({ method: 'PATCH', url: `/logos/${kept._id}`, headers: admin, payload: { title: 'Renamed' } })],
    ['DELETE /logos/:id', () => app.inject({ method: 'DELETE', url: `/logos/${gone._id}`, headers: admin })],
    ['POST /logos/:id/votes', () => app.inject({ method: 'POST', url: `/logos/${kept._id}/votes`, headers: bob })],
    ['DELETE /logos/:id/votes', () => app.inject({ method: 'DELETE', url: `/logos/${kept._id}/votes`, headers: alice })],
    ['PUT /voting/deadline', () => app.inject({ method: 'PUT', url: '/voting/deadline', headers: admin, payload: { deadline: null } })]
  ]
  for (const [name, write] of writes) {
    const started = Date.now()
    const res = await write()
    const took = Date.now() - started
    t.equal(res.statusCode, 503, `${name}: 503`)
    t.equal(res.headers['retry-after'], '5', `${name}: Retry-After`)
    t.match(res.json(), { code: 'store_unavailable', message: 'The database is unavailable; the request may not have been applied, try again shortly' }, `${name}: says what happened`)
    t.ok(took < 10_000, `${name}: answered in ${took} ms, not hung`)
  }

  // Reads of what is cached: from L1 here, from L2 on the other replica.
  for (const [name, replica] of [['L1', app], ['L2', other]] as const) {
    t.same((await replica.inject('/logos')).json(), before.list, `${name}: the list`)
    t.same((await replica.inject(`/logos/${kept._id}`)).json(), before.logo, `${name}: the logo`)
    t.same((await replica.inject(`/logos/${kept._id}/votes`)).json(), before.votes, `${name}: its count`)
    t.match((await replica.inject('/voting')).json(), { deadline: before.voting.deadline, open: true }, `${name}: the deadline`)
  }
  // What no cache holds (private vote lists are never cached) is a 503 too, not a 500.
  const mine = await app.inject({ url: '/me/votes', headers: alice })
  t.equal(mine.statusCode, 503)
  t.equal(mine.headers['retry-after'], '5')

  await pgServer.start()
  t.ok(await eventually(async () => (await app.inject('/readyz')).statusCode === 200, 20_000), '/readyz recovers by itself')
  // Nothing the refused writes asked for happened.
  const after = (await app.inject(`/logos/${kept._id}`)).json()
  t.match(after, { title: 'Kept', totalVotes: 1, version: before.logo.version })
  t.equal((await app.inject(`/logos/${gone._id}`)).statusCode, 200, 'the logo the refused DELETE named is still there')
  t.same((await app.inject({ url: '/me/votes', headers: alice })).json(), { logoIds: [kept._id] })
  t.same((await app.inject({ url: '/me/votes', headers: bob })).json(), { logoIds: [] })
  t.equal((await app.inject('/voting')).json().deadline, deadline)
  t.same((await app.inject('/logos')).json().items.map((l: { title: string }) => l.title), ['Kept', 'Doomed'])

  // And writes work again, on both replicas, with no restart.
  t.equal((await other.inject({ method: 'POST', url: `/logos/${kept._id}/votes`, headers: bob })).json().totalVotes, 2)
  t.equal((await app.inject({ method: 'PATCH', url: `/logos/${kept._id}`, headers: admin, payload: { title: 'Back' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/logos/${gone._id}`, headers: admin })).statusCode, 204)
  t.equal((await create('After')).statusCode, 201)
  t.equal((await other.inject(`/logos/${kept._id}`)).json().title, 'Back')
})

t.test('PostgreSQL frozen (SIGSTOP): writes still answer 503 within the query timeout, then recover', async (t) => {
  const pgServer = await privatePostgres(t)
  const app = await build(t, {
    DATABASE_URL: pgServer.url,
    DATABASE_SCHEMA: 'frozen',
    RATE_LIMIT_MAX: '100000',
    VOTE_RATE_LIMIT: '100000',
    DATABASE_CONNECT_TIMEOUT_MS: '1000',
    DATABASE_QUERY_TIMEOUT_MS: '1500'
  })
  const admin = bearer(await token('root', 'admin'))
  const logo = (await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: { title: 'Ice', imageUrl: 'https://x.test/i.png' } })).json()

  await pgServer.freeze()
  const started = Date.now()
  const votes = await Promise.all([1, 2, 3].map(async (i) => app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(await token(`u${i}`)) })))
  const took = Date.now() - started
  t.same(votes.map((v) => v.statusCode), [503, 503, 503], 'no answer from PostgreSQL: 503')
  t.ok(votes.every((v) => v.headers['retry-after'] === '5'), 'with Retry-After')
  t.ok(took < 8000, `answered in ${took} ms (query timeout 1.5 s), not hung`)

  await pgServer.thaw()
  t.ok(await eventually(async () => (await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(await token('u1')) })).statusCode === 200, 20_000), 'votes work again')
  t.equal((await app.inject(`/logos/${logo._id}/votes`)).json().totalVotes, 1, 'only the vote after the thaw counts (the frozen ones were aborted)')
})

// Found by the chaos runner (seed 1): PostgreSQL restarting under write traffic took every replica
// down with an unhandled 'error' ("Connection terminated unexpectedly") from a client checked out
// of the pool between two queries of a transaction, which the pool does not listen to.
t.test('a connection lost while a transaction holds it between queries fails that write, not the process', async (t) => {
  const pgServer = await privatePostgres(t)
  const store = await createPostgresStore({ connectionString: pgServer.url, schema: 'held', connectTimeoutMs: 1000, queryTimeoutMs: 2000 })
  t.teardown(() => store.close())
  let holding!: () => void
  let release!: () => void
  const held = new Promise<void>((resolve) => { holding = resolve })
  const gate = new Promise<void>((resolve) => { release = resolve })
  // A transaction step runs between the write and its COMMIT: it keeps the client checked out
  // with no query on it, which is where a lost connection emits 'error'.
  store.addTransactionStep!(async () => { holding(); await gate })
  const write = store.createLogo({ title: 'Held', imageUrl: 'https://x.test/h.png' })
  write.catch(() => {}) // judged below
  await held
  await pgServer.stop()
  await new Promise((resolve) => setTimeout(resolve, 300)) // the socket's end reaches the client
  release()
  await t.rejects(write, StoreUnavailableError, 'the write fails as unavailable')
  t.pass('the process is still here')

  await pgServer.start()
  t.ok(await eventually(async () => { try { await store.ping(); return true } catch { return false } }, 20_000), 'the pool reconnects')
  t.equal(await store.countLogos(), 0, 'the lost transaction committed nothing')
})

// Found by the chaos runner (seed 2): behind deploy/nginx.conf every 503 counted as a replica
// failure (proxy_next_upstream http_503, max_fails=1), so a database outage marked every replica
// down: clients got nginx's bare 502 instead of the 503 and its Retry-After, and kept getting it
// for fail_timeout (5 s) after PostgreSQL was back (9 s before the first vote went through).
t.test('behind nginx: a database outage reaches clients as 503 + Retry-After, and the first request after it succeeds', async (t) => {
  const pgServer = await privatePostgres(t)
  const env = { DATABASE_URL: pgServer.url, DATABASE_SCHEMA: 'edge', REDIS_URL, REDIS_KEY_PREFIX: redisPrefix(), TRUST_PROXY: '1', RATE_LIMIT_MAX: '100000', VOTE_RATE_LIMIT: '100000' }
  const a = await startServer(t, env)
  const b = await startServer(t, env)
  const nginx = await startNginx(t, [a.port, b.port])
  const admin = bearer(await token('root', 'admin'))
  const created = await fetch(`${nginx.http}/logos`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Edge', imageUrl: 'https://x.test/e.png' }) })
  const logo = await created.json() as { _id: string }
  const vote = async (sub: string) => fetch(`${nginx.http}/logos/${logo._id}/votes`, { method: 'POST', headers: bearer(await token(sub)) })

  const retract = async (sub: string) => fetch(`${nginx.http}/logos/${logo._id}/votes`, { method: 'DELETE', headers: bearer(await token(sub)) })

  await pgServer.stop()
  // A retraction first: nginx may repeat a DELETE on the next replica, so it reaches both.
  for (const [i, res] of [await retract('v0'), await vote('v1'), await retract('v2'), await vote('v3')].entries()) {
    t.equal(res.status, 503, `request ${i}: the replica's 503 reaches the client, not a 502`)
    t.equal(res.headers.get('retry-after'), '5')
    t.match(await res.json(), { code: 'store_unavailable' })
  }

  await retract('v4') // just before the database returns
  await pgServer.start()
  t.ok(await eventually(async () => (await Promise.all([a, b].map(async (s) => (await fetch(`${s.http}/readyz`)).status))).every((s) => s === 200), 20_000), 'both replicas ready')
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) statuses.push((await vote(`after${i}`)).status)
  t.same(statuses, [200, 200, 200, 200], 'no replica was marked down for answering 503: the next votes go through')
})
