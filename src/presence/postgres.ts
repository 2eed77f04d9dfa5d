// PostgreSQL adapter of the PresenceBackend port, for the scaled mode on PostgreSQL alone (no
// Redis): one heartbeat row per replica (its member count and when the row expires, on the
// database's clock), and the whole view sent with NOTIFY whenever a report changed it. Reports
// take a transaction-level advisory lock, so they run one at a time and views are numbered
// (a sequence) in the order their notifications are delivered. Receiving takes a connection of
// its own (src/pg-listener.ts) that LISTENs and reconnects by itself; after a gap the replica
// reports again.
import pg from 'pg'
import { openPgListener, type PgListener } from '../pg-listener.js'
import { settleWithin, withTimeout } from '../timeout.js'
import type { PresenceBackend, PresenceView } from './types.js'

/** How long closing the pool may take before it is left behind (the listener's close is bounded alike). */
const CLOSE_TIMEOUT_MS = 1000

export interface PostgresPresenceOptions {
  connectionString: string
  /** DATABASE_SCHEMA: the table and sequence live next to the store's. */
  schema: string
  /** What the presence is of (`logos`). */
  topic: string
  ttlMs: number
  /** This replica's id, for the connections' application_name. */
  replicaId: string
  log: { warn (obj: object, msg: string): void, info (obj: object, msg: string): void }
  /** Bound on the first connection and on each query. Default 5 s. */
  timeoutMs?: number
  /** Reconnect backoff of the listening connection. */
  retry?: { minMs: number, maxMs: number }
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`

/** 32-bit key for pg_advisory_xact_lock, from the channel name (stable across replicas). */
function lockKey (text: string): number {
  let h = 0
  for (const ch of text) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0
  return h
}

export async function connectPostgresPresence (opts: PostgresPresenceOptions): Promise<PresenceBackend> {
  const { connectionString, topic, ttlMs, log } = opts
  const timeoutMs = opts.timeoutMs ?? 5000
  const retry = opts.retry ?? { minMs: 50, maxMs: 2000 }
  const schema = quoteIdent(opts.schema)
  const table = `${schema}.presence_replicas`
  const sequence = `${schema}.presence_view_seq`
  // NOTIFY channel names are identifiers (at most 63 bytes): schema and topic keep replicas of
  // one deployment together and different deployments (or test schemas) apart.
  const channel = `presence_${opts.schema}_${topic}`.slice(0, 63)
  const lock = lockKey(channel)
  const handlers = new Set<(view: PresenceView) => void>()
  const gapHandlers = new Set<() => void>()
  let closed = false

  const pool = new pg.Pool({ connectionString, max: 2, connectionTimeoutMillis: timeoutMs, application_name: `logo-sync presence ${opts.replicaId}`.slice(0, 63) })
  pool.on('error', () => { /* an idle client broke; the pool replaces it */ })

  /** `fn` in one transaction on a pooled client: COMMIT after it, ROLLBACK if it throws. */
  async function transaction<T> (fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect()
    // A checked-out client losing its connection between queries emits 'error', which the pool
    // hears only on idle clients: unheard, it would end the process (see src/store/postgres.ts).
    let lost: Error | undefined
    const onError = (err: Error) => { lost = err }
    client.on('error', onError)
    try {
      await client.query('BEGIN')
      const result = await fn(client)
      await client.query('COMMIT')
      return result
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      client.off('error', onError)
      client.release(lost)
    }
  }

  // Replicas start together: CREATE … IF NOT EXISTS races on the catalog (a unique violation),
  // so the setup runs under a transaction-level advisory lock, one replica after the other.
  const setup = () => transaction(async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [lockKey(`setup ${table}`)])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${table} (
        topic TEXT NOT NULL, replica_id TEXT NOT NULL, members INTEGER NOT NULL, expires_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (topic, replica_id))`)
    await client.query(`CREATE SEQUENCE IF NOT EXISTS ${sequence}`)
  })

  const onNotification = (_channel: string, payload: string) => {
    if (closed) return
    let view: PresenceView
    try {
      view = JSON.parse(payload) as PresenceView
    } catch (err) {
      log.warn({ err }, 'ignoring a presence notification that is not JSON')
      return
    }
    for (const h of handlers) h(view)
  }

  let listening: PgListener
  try {
    await withTimeout(setup(), timeoutMs, 'presence table setup')
    listening = await openPgListener({
      connectionString,
      channels: [channel],
      name: 'presence',
      applicationName: `logo-sync presence ${opts.replicaId}`,
      onNotification,
      onGap () {
        log.info({ channel }, 'presence listening again; reporting to catch up')
        for (const h of gapHandlers) h()
      },
      log,
      timeoutMs,
      retry
    })
  } catch (err) {
    closed = true
    await pool.end().catch(() => {})
    throw err
  }

  function report (replicaId: string, members: number): Promise<PresenceView> {
    return transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [lock])
      const pruned = await client.query(`DELETE FROM ${table} WHERE topic = $1 AND expires_at < clock_timestamp() AND replica_id <> $2`, [topic, replicaId])
      const held = await client.query<{ members: number }>(`SELECT members FROM ${table} WHERE topic = $1 AND replica_id = $2 AND expires_at >= clock_timestamp()`, [topic, replicaId])
      let changed = (pruned.rowCount ?? 0) > 0 || (held.rows[0]?.members ?? 0) !== members
      if (members > 0) {
        await client.query(`INSERT INTO ${table} (topic, replica_id, members, expires_at) VALUES ($1, $2, $3, clock_timestamp() + $4 * interval '1 millisecond')
          ON CONFLICT (topic, replica_id) DO UPDATE SET members = EXCLUDED.members, expires_at = EXCLUDED.expires_at`, [topic, replicaId, members, ttlMs])
      } else {
        const removed = await client.query(`DELETE FROM ${table} WHERE topic = $1 AND replica_id = $2`, [topic, replicaId])
        if ((removed.rowCount ?? 0) > 0) changed = true
      }
      const rows = await client.query<{ replica_id: string, members: number }>(`SELECT replica_id, members FROM ${table} WHERE topic = $1`, [topic])
      const seq = await client.query<{ seq: string }>(`SELECT nextval('${sequence}') AS seq`)
      const view: PresenceView = { seq: Number(seq.rows[0].seq), members: Object.fromEntries(rows.rows.map((r) => [r.replica_id, r.members])) }
      // Delivered at COMMIT, in commit order: the lock above makes that the order of `seq`.
      if (changed) await client.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify(view)])
      return view
    })
  }

  return {
    kind: 'postgres',
    report: (replicaId, members) => withTimeout(report(replicaId, members), timeoutMs, 'presence report'),
    watch (handler) {
      handlers.add(handler)
      return () => { handlers.delete(handler) }
    },
    onGap (handler) {
      gapHandlers.add(handler)
      return () => { gapHandlers.delete(handler) }
    },
    async close () {
      if (closed) return
      closed = true
      handlers.clear()
      gapHandlers.clear()
      // Both at once, each bounded: a frozen server answers neither, and a shutdown has
      // SHUTDOWN_GRACE_MS for everything (the store and the bus close after this).
      await Promise.all([
        listening.close(),
        settleWithin(pool.end(), CLOSE_TIMEOUT_MS)
      ])
    }
  }
}
