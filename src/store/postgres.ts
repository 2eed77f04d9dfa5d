// PostgreSQL adapter (scaled mode): `pg` pool, versioned migrations under an advisory lock so
// replicas booting together migrate once. Votes are committed in groups (postgres-votes.ts):
// the rows and the count move under the logo row's lock in one transaction, so the count is
// exact under any concurrency and across any number of replicas. Transaction steps (the
// LISTEN/NOTIFY bus) join every write transaction before its COMMIT.
import pg from 'pg'
import { changeOf, type BusEvent } from '../changes.js'
import type { CreateLogoInput, DeadlineState, Logo, UpdateLogoInput } from '../domain.js'
import { newLogoId } from './ids.js'
import { createVoteBatcher } from './postgres-votes.js'
import { StoreUnavailableError, type Store, type StoreTransaction, type TransactionStep } from './types.js'
import { settleWithin } from '../timeout.js'

/** The advisory lock migrations run under (one replica migrates, the others wait for it). */
export const MIGRATION_LOCK = 0x10605e7c
/** How long closing the pool may take at shutdown (in-flight queries finish first when they can). */
const POOL_END_TIMEOUT_MS = 1000

const migrations: string[] = [
  `CREATE TABLE logos (
     id TEXT PRIMARY KEY,
     title TEXT NOT NULL,
     image_url TEXT NOT NULL,
     description TEXT,
     author TEXT,
     total_votes INTEGER NOT NULL DEFAULT 0 CHECK (total_votes >= 0),
     version INTEGER NOT NULL DEFAULT 1,
     created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
     updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
   );
   CREATE TABLE votes (
     logo_id TEXT NOT NULL REFERENCES logos(id) ON DELETE CASCADE,
     user_id TEXT NOT NULL,
     created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (logo_id, user_id)
   );
   CREATE INDEX votes_user_idx ON votes(user_id);
   CREATE TABLE voting (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     deadline TIMESTAMPTZ,
     version INTEGER NOT NULL DEFAULT 1
   );
   INSERT INTO voting (id, deadline, version) VALUES (1, NULL, 1);`
]

interface LogoRow {
  id: string
  title: string
  image_url: string
  description: string | null
  author: string | null
  total_votes: number
  version: number
  created_at: Date
  updated_at: Date
}

function toLogo (row: LogoRow): Logo {
  const logo: Logo = {
    _id: row.id,
    title: row.title,
    imageUrl: row.image_url,
    totalVotes: row.total_votes,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString()
  }
  if (row.description !== null) logo.description = row.description
  if (row.author !== null) logo.author = row.author
  return logo
}

const toDeadline = (row: { deadline: Date | null, version: number }): DeadlineState =>
  ({ deadline: row.deadline ? row.deadline.toISOString() : null, version: row.version })

export interface PostgresStoreOptions {
  connectionString: string
  schema?: string
  max?: number
  /** How long to wait for a connection (a free pooled one or a new one); default 5 s. */
  connectTimeoutMs?: number
  /** A query with no answer after this long fails and its connection is dropped; default 10 s. */
  queryTimeoutMs?: number
}

/**
 * SQLSTATE classes and codes that mean "the server is not there", not "the query was wrong"
 * (25P03: the server ended this session, which sat idle in a transaction too long).
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '25P03'])
/**
 * SQLSTATEs of a server that is there but would not do it now: the statement ran past
 * statement_timeout (57014, query_canceled) or waited on a lock past lock_timeout (55P03,
 * lock_not_available), or the server is read-only (25006, read_only_sql_transaction: a standby,
 * or a primary being demoted during a failover). Trying again shortly will do, as for an outage.
 */
const REFUSED_FOR_NOW_SQLSTATES = new Set(['57014', '55P03', '25006'])
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])
// pg's own wording for a lost, closed or timed-out connection (these errors carry no code).
const UNAVAILABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|is not queryable|Connection ended|server closed the connection/i

/**
 * Whether a pg error means PostgreSQL could not be reached or went away (refused, reset, shut
 * down, starting up, out of connections, timed out), as opposed to a query it refused.
 */
export function isPostgresUnavailable (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNOS.has(code))) return true
  if (err instanceof AggregateError && err.errors.some(isPostgresUnavailable)) return true
  return UNAVAILABLE_MESSAGE.test(err.message)
}

/** Whether PostgreSQL answered but gave up for now: a timeout it enforced, or it is read-only. */
export function isPostgresRefusingForNow (err: unknown): boolean {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined
  return typeof code === 'string' && REFUSED_FOR_NOW_SQLSTATES.has(code)
}

/** A pg error as the store's caller should see it: unreachable or refusing for now is StoreUnavailableError. */
export function storeErrorOf (err: unknown): unknown {
  if (isPostgresUnavailable(err) || isPostgresRefusingForNow(err)) return new StoreUnavailableError(5, { cause: err })
  return err
}

/** Every store call through here: an unreachable server becomes the domain's StoreUnavailableError. */
async function guarded<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw storeErrorOf(err)
  }
}

/**
 * The server-side bounds derived from DATABASE_QUERY_TIMEOUT_MS. The client gives up on a query
 * with no answer after `queryTimeoutMs` (a frozen server, a cut network) and drops its
 * connection, but a server that is merely slow, or a backend waiting on a lock, would go on
 * working for nobody (PostgreSQL does not notice a client that left until it next talks to it).
 * So the server cancels too, a little earlier, keeping the connection: `statement_timeout` at
 * 90% of the query timeout (at most 1 s less), and `lock_timeout`, for the lock waits within it,
 * at half of that. Exported for the tests.
 */
export function serverTimeouts (queryTimeoutMs: number): { statementTimeoutMs: number, lockTimeoutMs: number } {
  const statementTimeoutMs = Math.max(1, queryTimeoutMs - Math.min(1000, Math.floor(queryTimeoutMs / 10)))
  return { statementTimeoutMs, lockTimeoutMs: Math.max(1, Math.floor(statementTimeoutMs / 2)) }
}

/**
 * The settings of every pooled session (exported for the tests, which open one alike). A
 * transaction left idle for as long as a query may take is ended by the server
 * (`idle_in_transaction_session_timeout`, 25P03): a replica frozen or cut off in the middle of a
 * vote batch would otherwise hold the hot logo's row lock until TCP keepalive noticed (hours by
 * default), and every other replica's votes on that logo would fail on lock_timeout meanwhile.
 */
export function sessionConfig (opts: { connectionString: string, schema: string, connectTimeoutMs: number, queryTimeoutMs: number }): pg.ClientConfig {
  const { statementTimeoutMs, lockTimeoutMs } = serverTimeouts(opts.queryTimeoutMs)
  return {
    connectionString: opts.connectionString,
    options: `-c search_path=${opts.schema}`,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    // Bounds every query (a frozen server or a cut network never answers): the caller gets an
    // error instead of hanging; the connection is then dropped (see session), never reused.
    query_timeout: opts.queryTimeoutMs,
    // And the server gives up too, first (serverTimeouts): 57014 or 55P03, a 503, the connection kept.
    statement_timeout: statementTimeoutMs,
    lock_timeout: lockTimeoutMs,
    idle_in_transaction_session_timeout: opts.queryTimeoutMs,
    keepAlive: true
  }
}

/**
 * Migrations, on a connection of their own with no timeout at all (statement, lock or client
 * side): a replica waits for another one's migration (the advisory lock) as long as that takes,
 * and a long migration is not cut off. Only the connection itself is bounded.
 */
async function migrate (opts: { connectionString: string, schema: string, connectTimeoutMs: number }): Promise<void> {
  const client = new pg.Client({
    connectionString: opts.connectionString,
    options: `-c search_path=${opts.schema} -c statement_timeout=0 -c lock_timeout=0`,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    keepAlive: true
  })
  // An error on an idle connection (the server went away) comes back through the next query.
  client.on('error', () => {})
  await client.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${opts.schema}`)
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())')
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations')
    const applied = new Set(rows.map((r) => r.version))
    for (const [i, sql] of migrations.entries()) {
      if (applied.has(i + 1)) continue
      await client.query(sql)
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [i + 1])
    }
    await client.query('COMMIT')
  } finally {
    // Ending the session rolls back whatever did not commit.
    await settleWithin(client.end(), POOL_END_TIMEOUT_MS)
  }
}

export async function createPostgresStore (opts: PostgresStoreOptions): Promise<Store> {
  const schema = opts.schema ?? 'public'
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5000
  const queryTimeoutMs = opts.queryTimeoutMs ?? 10_000
  await migrate({ connectionString: opts.connectionString, schema, connectTimeoutMs })

  const pool = new pg.Pool({ ...sessionConfig({ connectionString: opts.connectionString, schema, connectTimeoutMs, queryTimeoutMs }), max: opts.max ?? 10 })
  // An idle client that loses its server must not crash the process; the pool replaces it.
  pool.on('error', () => {})

  async function tx<T> (fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return await session(async (c) => {
      await c.query('BEGIN')
      const result = await fn(c)
      await c.query('COMMIT')
      return result
    })
  }

  /** `fn` on a pooled connection, sending BEGIN and COMMIT itself; ROLLBACK when it throws. */
  async function session<T> (fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect()
    let lost: Error | undefined
    // A checked-out client whose connection drops between two queries emits 'error', which the
    // pool only listens for on idle clients: unheard, it would take the process down (PostgreSQL
    // restarting under write traffic did). The next query on it fails, and release(lost) drops it.
    const onError = (err: Error) => { lost = err }
    client.on('error', onError)
    try {
      return await fn(client)
    } catch (err) {
      // A lost connection cannot roll back (and a frozen server would not answer the ROLLBACK):
      // the server aborts the transaction when the connection goes, which release(err) does.
      // A read-only server (25006, during a failover) is left too: the pool's next connection
      // may reach the new primary, where this one never will.
      if (isPostgresUnavailable(err) || (err as { code?: unknown }).code === '25006') lost = err as Error
      else await client.query('ROLLBACK').catch((e: Error) => { lost = e })
      throw err
    } finally {
      client.off('error', onError)
      client.release(lost)
    }
  }

  const steps = new Set<TransactionStep>()

  /** Runs the transaction steps on `c`, before its COMMIT, when the transaction changed anything. */
  async function runSteps (c: pg.PoolClient, changes: (BusEvent | null)[]): Promise<void> {
    const made = changes.filter((e): e is BusEvent => e !== null)
    if (made.length === 0 || steps.size === 0) return
    const handle: StoreTransaction = {
      async notify (channel, payload) { await c.query('SELECT pg_notify($1, $2)', [channel, payload]) }
    }
    for (const step of steps) await step(made, handle)
  }

  /**
   * A one-statement write: on the pool when no step joins it (one round trip), else in a
   * transaction with the steps before its COMMIT.
   */
  async function write<T> (statement: (db: pg.Pool | pg.PoolClient) => Promise<T>, changes: (result: T) => BusEvent | null): Promise<T> {
    if (steps.size === 0) return statement(pool)
    return tx(async (c) => {
      const result = await statement(c)
      await runSteps(c, [changes(result)])
      return result
    })
  }

  // Votes are committed in groups (src/store/postgres-votes.ts), each with its own exact answer.
  const votes = createVoteBatcher({ session, runSteps, hasSteps: () => steps.size > 0 })

  const store: Store = {
    kind: 'postgres',
    async listLogos () {
      const { rows } = await pool.query<LogoRow>('SELECT * FROM logos ORDER BY created_at, id')
      return rows.map(toLogo)
    },
    async getLogo (id) {
      const { rows: [row] } = await pool.query<LogoRow>('SELECT * FROM logos WHERE id = $1', [id])
      return row ? toLogo(row) : null
    },
    async countLogos () {
      const { rows: [row] } = await pool.query<{ n: number }>('SELECT COUNT(*)::int AS n FROM logos')
      return row.n
    },
    createLogo: (input: CreateLogoInput) => write(async (db) => {
      const { rows: [row] } = await db.query<LogoRow>(
        'INSERT INTO logos (id, title, image_url, description, author) VALUES ($1, $2, $3, $4, $5) RETURNING *',
        [newLogoId(), input.title, input.imageUrl, input.description ?? null, input.author ?? null])
      return toLogo(row)
    }, changeOf.created),
    updateLogo: (id, patch: UpdateLogoInput) => write(async (db) => {
      const columns = { title: 'title', imageUrl: 'image_url', description: 'description', author: 'author' } as const
      const sets: string[] = []
      const values: unknown[] = [id]
      for (const [field, column] of Object.entries(columns)) {
        const value = patch[field as keyof UpdateLogoInput]
        if (value === undefined) continue
        values.push(value)
        sets.push(`${column} = $${values.length}`)
      }
      const { rows: [row] } = await db.query<LogoRow>(
        `UPDATE logos SET ${sets.join(', ')}, version = version + 1, updated_at = now() WHERE id = $1 RETURNING *`, values)
      return row ? toLogo(row) : null
    }, (logo) => logo && changeOf.updated(logo)),
    deleteLogo: (id) => write(async (db) => {
      const { rows: [row] } = await db.query<{ version: number }>('DELETE FROM logos WHERE id = $1 RETURNING version', [id])
      return row ? { _id: id, version: row.version + 1 } : null
    }, (deleted) => deleted && changeOf.deleted(deleted)),
    castVote: (logoId, userId) => votes.vote(logoId, userId, true),
    retractVote: (logoId, userId) => votes.vote(logoId, userId, false),
    async getVotes (logoId) {
      const { rows: [row] } = await pool.query<{ total_votes: number, version: number }>('SELECT total_votes, version FROM logos WHERE id = $1', [logoId])
      return row ? { logoId, totalVotes: row.total_votes, version: row.version } : null
    },
    async userVotes (userId) {
      const { rows } = await pool.query<{ logo_id: string }>('SELECT logo_id FROM votes WHERE user_id = $1 ORDER BY created_at, logo_id', [userId])
      return rows.map((r) => r.logo_id)
    },
    async getDeadline () {
      const { rows: [row] } = await pool.query<{ deadline: Date | null, version: number }>('SELECT deadline, version FROM voting WHERE id = 1')
      return toDeadline(row)
    },
    setDeadline: (deadline) => write(async (db) => {
      const { rows: [row] } = await db.query<{ deadline: Date | null, version: number }>(
        'UPDATE voting SET deadline = $1, version = version + 1 WHERE id = 1 RETURNING deadline, version', [deadline])
      return toDeadline(row)
    }, changeOf.deadline),
    addTransactionStep (step) {
      steps.add(step)
      return () => { steps.delete(step) }
    },
    async ping () { await pool.query('SELECT 1') },
    async close () {
      // pool.end() waits for every client to say goodbye, which a frozen server never answers:
      // bounded, so a shutdown finishes whatever state PostgreSQL is in.
      await settleWithin(pool.end(), POOL_END_TIMEOUT_MS)
    }
  }

  // Every data call (not addTransactionStep/close) maps an unreachable server to StoreUnavailableError.
  const data = ['listLogos', 'getLogo', 'countLogos', 'createLogo', 'updateLogo', 'deleteLogo', 'castVote', 'retractVote', 'getVotes', 'userVotes', 'getDeadline', 'setDeadline', 'ping'] as const
  for (const name of data) {
    const call = store[name] as (...args: unknown[]) => Promise<unknown>
    Object.assign(store, { [name]: (...args: unknown[]) => guarded(() => call(...args)) })
  }
  return store
}
