// The PostgreSQL store's bounds on the server's side and what it answers when PostgreSQL is there
// but will not do it now: the server cancels a statement or a lock wait itself (statement_timeout,
// lock_timeout, derived from DATABASE_QUERY_TIMEOUT_MS) instead of working on for a client that
// gave up; a statement cancelled, a lock not granted or a read-only server (a failover) is
// StoreUnavailableError (503 + Retry-After), not a 500; and migrations, which may wait on another
// replica's migration, run under no timeout at all.
import pg from 'pg'
import t from 'tap'
import { createPostgresStore, MIGRATION_LOCK, serverTimeouts, sessionConfig, storeErrorOf } from '../src/store/postgres.js'
import { StoreUnavailableError, type Store } from '../src/store/types.js'
import { PG_URL, pgSchema, uniqueName, type TestLike } from './helper.js'

async function admin (t: TestLike) {
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  t.teardown(() => client.end())
  return client
}

const opened = (t: TestLike, store: Store) => { t.teardown(() => store.close()); return store }

t.test('the server-side bounds follow DATABASE_QUERY_TIMEOUT_MS, a little inside it', async (t) => {
  t.same(serverTimeouts(10_000), { statementTimeoutMs: 9000, lockTimeoutMs: 4500 })
  t.same(serverTimeouts(1500), { statementTimeoutMs: 1350, lockTimeoutMs: 675 })
  t.same(serverTimeouts(100), { statementTimeoutMs: 90, lockTimeoutMs: 45 })
})

t.test('57014, 55P03 and 25006 are StoreUnavailableError; a refused query is not', async (t) => {
  const pgError = (code: string) => Object.assign(new Error(`sqlstate ${code}`), { code })
  for (const code of ['57014', '55P03', '25006']) {
    const mapped = storeErrorOf(pgError(code))
    t.ok(mapped instanceof StoreUnavailableError, `${code}: unavailable for now`)
    t.match(mapped, { code: 'store_unavailable', retryAfterSeconds: 5, cause: { code } })
    // A lost COMMIT answer leaves a write's outcome unknown: the message must not say nothing changed.
    t.equal((mapped as Error).message, 'The database is unavailable; the request may not have been applied, try again shortly')
  }
  for (const code of ['23505', '42P01', '22P02']) t.match(storeErrorOf(pgError(code)), { code }, `${code}: left as it is (a bug, a 500)`)
})

t.test('a write stuck behind a row lock: the server gives it up (lock_timeout), 503, and nobody is left waiting', async (t) => {
  const schema = await pgSchema(t)
  const store = opened(t, await createPostgresStore({ connectionString: PG_URL, schema, queryTimeoutMs: 2000, max: 1 }))
  const logo = await store.createLogo({ title: 'Locked', imageUrl: 'https://x.test/l.png' })
  const holder = await admin(t)
  await holder.query('BEGIN')
  await holder.query(`SELECT id FROM "${schema}".logos WHERE id = $1 FOR UPDATE`, [logo._id])
  const { rows: [{ pid }] } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')

  const started = Date.now()
  const err = await store.castVote(logo._id, 'alice').then(() => null, (e: unknown) => e)
  const took = Date.now() - started
  t.ok(err instanceof StoreUnavailableError, 'the vote fails as unavailable (503 + Retry-After)')
  t.match(err, { cause: { code: '55P03' } }, 'because the server gave up the lock wait (lock_not_available), not the client')
  t.ok(took < 1800, `within the lock timeout, well inside the query timeout (${took} ms)`)
  const observer = await admin(t)
  const waiting = await observer.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [pid])
  t.equal(waiting.rows[0].n, 0, 'no backend is still waiting for the lock on behalf of a client that was answered')

  await holder.query('ROLLBACK')
  t.match(await store.castVote(logo._id, 'alice'), { changed: true, totalVotes: 1 }, 'the lock released, the vote goes through on the same pool')
})

t.test('a replica gone silent in the middle of a transaction: the server ends its session and the lock it held is free again', async (t) => {
  const schema = await pgSchema(t)
  const queryTimeoutMs = 1500
  const store = opened(t, await createPostgresStore({ connectionString: PG_URL, schema, queryTimeoutMs }))
  const logo = await store.createLogo({ title: 'Held by a silent replica', imageUrl: 'https://x.test/s.png' })
  // A session like every pooled one of the store (another replica's), stopped mid-batch: it holds
  // the hot logo's row lock and sends nothing more (a frozen process, a cut network).
  const silent = new pg.Client(sessionConfig({ connectionString: PG_URL, schema, connectTimeoutMs: 5000, queryTimeoutMs }))
  // The first error is the server's FATAL; the connection's end follows it as another one.
  const ended = new Promise<Error>((resolve) => silent.on('error', resolve))
  await silent.connect()
  t.teardown(() => silent.end().catch(() => {}))
  await silent.query('BEGIN')
  await silent.query('SELECT id FROM logos WHERE id = $1 FOR UPDATE', [logo._id])
  const started = Date.now()
  let outcome: unknown
  for (;;) {
    outcome = await store.castVote(logo._id, 'alice').catch((e: unknown) => e)
    if (!(outcome instanceof StoreUnavailableError) || Date.now() - started > 10_000) break
  }
  t.match(outcome, { changed: true, totalVotes: 1 }, 'the vote goes through once the silent session is gone')
  t.ok(Date.now() - started < 3 * queryTimeoutMs + 1000, `within about the idle timeout (${Date.now() - started} ms)`)
  t.match(await ended, { code: '25P03' }, 'the server ended the idle session (idle_in_transaction_session_timeout)')
  t.ok(storeErrorOf(await ended) instanceof StoreUnavailableError, 'which the store reads as unavailable (the connection is gone)')
})

t.test('a read-only server (a failover in progress): writes 503, and once it takes writes again so does the store', async (t) => {
  const schema = await pgSchema(t)
  const role = uniqueName('ro').toLowerCase()
  const db = await admin(t)
  await db.query(`CREATE ROLE ${role} LOGIN`)
  await db.query(`GRANT CREATE, CONNECT ON DATABASE "${new URL(PG_URL).pathname.slice(1)}" TO ${role}`)
  await db.query(`GRANT ALL ON SCHEMA "${schema}" TO ${role}`)
  const url = new URL(PG_URL)
  url.username = role
  const store = await createPostgresStore({ connectionString: url.toString(), schema, max: 1 })
  t.teardown(async () => {
    await store.close()
    const c = new pg.Client({ connectionString: PG_URL })
    await c.connect()
    await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${role}'`)
    await c.query(`DROP OWNED BY ${role} CASCADE`)
    await c.query(`DROP ROLE ${role}`)
    await c.end()
  })
  const logo = await store.createLogo({ title: 'Before', imageUrl: 'https://x.test/b.png' })

  // Its sessions from now on are read-only, as on a standby or a primary being demoted.
  await db.query(`ALTER ROLE ${role} SET default_transaction_read_only = on`)
  await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role])
  await t.rejects(store.createLogo({ title: 'During', imageUrl: 'https://x.test/d.png' }), StoreUnavailableError, 'a write on the pool: 503')
  const vote = await store.castVote(logo._id, 'alice').then(() => null, (e: unknown) => e)
  t.ok(vote instanceof StoreUnavailableError, 'a vote (a transaction): 503')
  t.match(vote, { cause: { code: '25006' } })

  await db.query(`ALTER ROLE ${role} RESET default_transaction_read_only`)
  t.match(await store.castVote(logo._id, 'alice'), { changed: true, totalVotes: 1 }, 'the read-only connection was dropped: the next one takes the vote')
  t.equal(await store.countLogos(), 1, 'nothing was written while it was read-only')
})

t.test('migrations wait for the migration lock as long as it is held, whatever the query timeout', async (t) => {
  const schema = await pgSchema(t)
  const holder = await admin(t)
  // Another replica migrating: it holds the lock (the advisory lock is database-wide, so hold it briefly).
  await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
  let unlocked = false
  const release = setTimeout(() => { unlocked = true; holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {}) }, 1000)
  t.teardown(() => clearTimeout(release))
  const started = Date.now()
  const store = opened(t, await createPostgresStore({ connectionString: PG_URL, schema, queryTimeoutMs: 200 }))
  t.ok(unlocked, `it started once the lock was released (${Date.now() - started} ms), past the 200 ms query timeout`)
  t.equal(await store.countLogos(), 0, 'migrated')
})
