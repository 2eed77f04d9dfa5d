// Votes without HTTP, in a process of its own on the load core (started by votes.bench.ts):
//   store-postgres   castVote through the Store port, PostgreSQL adapter (group commit)
//   store-sqlite     castVote through the Store port, SQLite adapter (embedded)
//   naive            one autocommit statement per vote on a pg.Pool, the loop a developer would
//                    write first: WITH ins AS (INSERT … ON CONFLICT DO NOTHING RETURNING 1) UPDATE logos …
//   store-postgres-16   as store-postgres, the votes spread over 16 logos (how it grows with logos)
//   store-postgres-2r   two PostgreSQL stores (two replicas' pools and batchers) on one hot logo,
//                       half the callers each (how it grows with replicas)
// Each with `concurrency` callers in flight (the pool as wide as that), every vote from a new
// user on one hot logo, bounded in time and count. The targets are opened once ('open') and kept
// across rounds; 'check' reads the exact counts back; 'close' closes everything.
import Database from 'better-sqlite3'
import pg from 'pg'
import { createPostgresStore } from '../src/store/postgres.js'
import { createSqliteStore } from '../src/store/sqlite.js'
import type { Store } from '../src/store/types.js'
import { serveLoad } from './lib.js'

export type VoteTarget = 'store-postgres' | 'store-sqlite' | 'naive' | 'store-postgres-16' | 'store-postgres-2r'

export type VotesInput =
  | { op: 'open', pgUrl: string, schemas: Record<'store-postgres' | 'naive', string>, sqliteFile: string, concurrency: number }
  | { op: 'run', target: VoteTarget, seconds: number, maxVotes: number }
  | { op: 'check' }
  | { op: 'close' }

export interface VotesRun { votes: number, changed: number, seconds: number, errors: number, firstError?: string }
export type VotesCheck = Array<{ target: VoteTarget, totalVotes: number, rows: number, acknowledged: number }>

const NAIVE_SQL = `
WITH ins AS (
  INSERT INTO votes (logo_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1
)
UPDATE logos SET total_votes = total_votes + (SELECT count(*) FROM ins)::int,
                 version = version + (SELECT count(*) FROM ins)::int,
                 updated_at = CASE WHEN EXISTS (SELECT 1 FROM ins) THEN now() ELSE updated_at END
WHERE id = $1
RETURNING total_votes, version, EXISTS (SELECT 1 FROM ins) AS changed`

interface Target {
  /** Caller i votes through stores[i % stores.length]; vote n goes to logos[n % logos.length]. */
  stores: Array<Pick<Store, 'castVote'>>
  logos: string[]
  acknowledged: number
}

interface Opened {
  concurrency: number
  targets: Record<VoteTarget, Target>
  closers: Array<() => Promise<void>>
  naivePool: pg.Pool
  pgUrl: string
  sqliteFile: string
  schemas: Record<'store-postgres' | 'naive', string>
}

let opened: Opened | null = null
let users = 0

async function open (input: Extract<VotesInput, { op: 'open' }>): Promise<Opened> {
  const storePg = await createPostgresStore({ connectionString: input.pgUrl, schema: input.schemas['store-postgres'], max: input.concurrency })
  const storePg2 = await createPostgresStore({ connectionString: input.pgUrl, schema: input.schemas['store-postgres'], max: input.concurrency })
  // The naive loop's tables: the same migrations, in a schema of its own, then a plain pool.
  const naiveTables = await createPostgresStore({ connectionString: input.pgUrl, schema: input.schemas.naive, max: 1 })
  const naiveLogo = (await naiveTables.createLogo({ title: 'Hot logo (naive loop)', imageUrl: 'https://example.com/hot.png' }))._id
  await naiveTables.close()
  const naivePool = new pg.Pool({ connectionString: input.pgUrl, max: input.concurrency, options: `-c search_path=${input.schemas.naive}` })
  naivePool.on('error', () => {})
  const sqlite = createSqliteStore(input.sqliteFile)
  const hot = async (store: Store) => (await store.createLogo({ title: 'Hot logo', imageUrl: 'https://example.com/hot.png' }))._id
  const naive: Pick<Store, 'castVote'> = {
    async castVote (logoId, userId) {
      const { rows: [r] } = await naivePool.query<{ total_votes: number, version: number, changed: boolean }>(NAIVE_SQL, [logoId, userId])
      return { logoId, totalVotes: r.total_votes, version: r.version, voted: true, changed: r.changed }
    }
  }
  const many: string[] = []
  for (let i = 0; i < 16; i++) many.push(await hot(storePg))
  const targets: Record<VoteTarget, Target> = {
    naive: { stores: [naive], logos: [naiveLogo], acknowledged: 0 },
    'store-postgres': { stores: [storePg], logos: [await hot(storePg)], acknowledged: 0 },
    'store-postgres-16': { stores: [storePg], logos: many, acknowledged: 0 },
    'store-postgres-2r': { stores: [storePg, storePg2], logos: [await hot(storePg)], acknowledged: 0 },
    'store-sqlite': { stores: [sqlite], logos: [await hot(sqlite)], acknowledged: 0 }
  }
  // Open every pool connection before the first measured run.
  await Promise.all(Array.from({ length: input.concurrency }, () => naivePool.query('SELECT 1')))
  await Promise.all(Array.from({ length: input.concurrency }, () => storePg.getLogo(many[0])))
  await Promise.all(Array.from({ length: input.concurrency }, () => storePg2.getLogo(many[0])))
  return {
    concurrency: input.concurrency,
    targets,
    closers: [() => storePg.close(), () => storePg2.close(), () => sqlite.close(), () => naivePool.end()],
    naivePool,
    pgUrl: input.pgUrl,
    sqliteFile: input.sqliteFile,
    schemas: input.schemas
  }
}

async function run (o: Opened, name: VoteTarget, seconds: number, maxVotes: number): Promise<VotesRun> {
  const target = o.targets[name]
  let votes = 0
  let changed = 0
  let errors = 0
  let firstError: string | undefined
  let n = 0
  const started = performance.now()
  const until = started + seconds * 1000
  await Promise.all(Array.from({ length: o.concurrency }, async (_, caller) => {
    const store = target.stores[caller % target.stores.length]
    while (performance.now() < until && votes + errors < maxVotes) {
      try {
        if ((await store.castVote(target.logos[n++ % target.logos.length], `voter-${process.pid}-${users++}`)).changed) changed++
        votes++
      } catch (err) {
        errors++
        firstError ??= String(err)
      }
    }
  }))
  target.acknowledged += changed
  return { votes, changed, seconds: (performance.now() - started) / 1000, errors, ...(firstError === undefined ? {} : { firstError }) }
}

async function check (o: Opened): Promise<VotesCheck> {
  const out: VotesCheck = []
  const pgSum = async (schema: string, sql: string, logos: string[]) => {
    const c = new pg.Client({ connectionString: o.pgUrl, options: `-c search_path=${schema}` })
    await c.connect()
    try { return (await c.query<{ n: number }>(sql, [logos])).rows[0].n } finally { await c.end() }
  }
  for (const [name, target] of Object.entries(o.targets) as [VoteTarget, Target][]) {
    let totalVotes: number
    let rows: number
    if (name === 'store-sqlite') {
      // A second connection on the file (WAL: it sees every committed row).
      const db = new Database(o.sqliteFile, { readonly: true })
      try {
        totalVotes = (db.prepare('SELECT total_votes AS n FROM logos WHERE id = ?').get(target.logos[0]) as { n: number }).n
        rows = (db.prepare('SELECT count(*) AS n FROM votes WHERE logo_id = ?').get(target.logos[0]) as { n: number }).n
      } finally { db.close() }
    } else {
      const schema = name === 'naive' ? o.schemas.naive : o.schemas['store-postgres']
      totalVotes = await pgSum(schema, 'SELECT coalesce(sum(total_votes), 0)::int AS n FROM logos WHERE id = ANY($1::text[])', target.logos)
      rows = await pgSum(schema, 'SELECT count(*)::int AS n FROM votes WHERE logo_id = ANY($1::text[])', target.logos)
    }
    out.push({ target: name, totalVotes, rows, acknowledged: target.acknowledged })
  }
  return out
}

serveLoad<VotesInput, unknown>(async (input) => {
  switch (input.op) {
    case 'open':
      opened = await open(input)
      return Object.fromEntries(Object.entries(opened.targets).map(([k, v]) => [k, v.logos]))
    case 'run':
      if (opened === null) throw new Error('open first')
      return await run(opened, input.target, input.seconds, input.maxVotes)
    case 'check':
      if (opened === null) throw new Error('open first')
      return await check(opened)
    case 'close':
      if (opened !== null) {
        for (const close of opened.closers) await close()
        opened = null
      }
      return null
  }
})
