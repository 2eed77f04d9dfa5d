// Votes without HTTP, in a process of its own on the load core (started by votes.bench.ts):
//   store-postgres   castVote through the Store port, PostgreSQL adapter (group commit)
//   store-sqlite     castVote through the Store port, SQLite adapter (embedded)
//   naive            one autocommit statement per vote on a pg.Pool, the loop a developer would
//                    write first: WITH ins AS (INSERT … ON CONFLICT DO NOTHING RETURNING 1) UPDATE logos …
// Each with `concurrency` callers in flight (the pool as wide as that), every vote from a new
// user on one hot logo, bounded in time and count. The targets are opened once ('open') and kept
// across rounds; 'check' reads the exact counts back; 'close' closes everything.
import Database from 'better-sqlite3'
import pg from 'pg'
import { createPostgresStore } from '../src/store/postgres.js'
import { createSqliteStore } from '../src/store/sqlite.js'
import type { Store } from '../src/store/types.js'
import { serveLoad } from './lib.js'

export type VoteTarget = 'store-postgres' | 'store-sqlite' | 'naive'

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

interface Opened {
  concurrency: number
  stores: Record<'store-postgres' | 'store-sqlite', Store>
  naivePool: pg.Pool
  /** The hot logo of each target. */
  logos: Record<VoteTarget, string>
  acknowledged: Record<VoteTarget, number>
  pgUrl: string
  sqliteFile: string
  schemas: Record<'store-postgres' | 'naive', string>
}

let opened: Opened | null = null
let users = 0

async function open (input: Extract<VotesInput, { op: 'open' }>): Promise<Opened> {
  const storePg = await createPostgresStore({ connectionString: input.pgUrl, schema: input.schemas['store-postgres'], max: input.concurrency })
  // The naive loop's tables: the same migrations, in a schema of its own, then a plain pool.
  const naiveTables = await createPostgresStore({ connectionString: input.pgUrl, schema: input.schemas.naive, max: 1 })
  const naiveLogo = (await naiveTables.createLogo({ title: 'Hot logo (naive loop)', imageUrl: 'https://example.com/hot.png' }))._id
  await naiveTables.close()
  const naivePool = new pg.Pool({ connectionString: input.pgUrl, max: input.concurrency, options: `-c search_path=${input.schemas.naive}` })
  naivePool.on('error', () => {})
  const sqlite = createSqliteStore(input.sqliteFile)
  const stores = { 'store-postgres': storePg, 'store-sqlite': sqlite }
  const logos: Record<VoteTarget, string> = {
    'store-postgres': (await storePg.createLogo({ title: 'Hot logo', imageUrl: 'https://example.com/hot.png' }))._id,
    'store-sqlite': (await sqlite.createLogo({ title: 'Hot logo', imageUrl: 'https://example.com/hot.png' }))._id,
    naive: naiveLogo
  }
  // Open every pool connection before the first measured run.
  await Promise.all(Array.from({ length: input.concurrency }, () => naivePool.query('SELECT 1')))
  await Promise.all(Array.from({ length: input.concurrency }, () => storePg.getLogo(logos['store-postgres'])))
  return { concurrency: input.concurrency, stores, naivePool, logos, acknowledged: { 'store-postgres': 0, 'store-sqlite': 0, naive: 0 }, pgUrl: input.pgUrl, sqliteFile: input.sqliteFile, schemas: input.schemas }
}

async function run (o: Opened, target: VoteTarget, seconds: number, maxVotes: number): Promise<VotesRun> {
  const logo = o.logos[target]
  const vote = target === 'naive'
    ? async (user: string) => (await o.naivePool.query<{ changed: boolean }>(NAIVE_SQL, [logo, user])).rows[0].changed
    : async (user: string) => (await o.stores[target].castVote(logo, user)).changed
  let votes = 0
  let changed = 0
  let errors = 0
  let firstError: string | undefined
  const started = performance.now()
  const until = started + seconds * 1000
  await Promise.all(Array.from({ length: o.concurrency }, async () => {
    while (performance.now() < until && votes + errors < maxVotes) {
      try {
        if (await vote(`voter-${process.pid}-${users++}`)) changed++
        votes++
      } catch (err) {
        errors++
        firstError ??= String(err)
      }
    }
  }))
  o.acknowledged[target] += changed
  return { votes, changed, seconds: (performance.now() - started) / 1000, errors, ...(firstError === undefined ? {} : { firstError }) }
}

async function check (o: Opened): Promise<VotesCheck> {
  const out: VotesCheck = []
  for (const target of ['store-postgres', 'store-sqlite'] as const) {
    const logo = await o.stores[target].getLogo(o.logos[target])
    out.push({ target, totalVotes: logo?.totalVotes ?? NaN, rows: await voteRows(o, target), acknowledged: o.acknowledged[target] })
  }
  const { rows } = await o.naivePool.query<{ total_votes: number }>('SELECT total_votes FROM logos WHERE id = $1', [o.logos.naive])
  out.push({ target: 'naive', totalVotes: rows[0].total_votes, rows: await voteRows(o, 'naive'), acknowledged: o.acknowledged.naive })
  return out
}

async function voteRows (o: Opened, target: VoteTarget): Promise<number> {
  if (target === 'store-sqlite') {
    // A second connection on the file (WAL: it sees every committed row).
    const db = new Database(o.sqliteFile, { readonly: true })
    try { return (db.prepare('SELECT count(*) AS n FROM votes WHERE logo_id = ?').get(o.logos[target]) as { n: number }).n } finally { db.close() }
  }
  const c = new pg.Client({ connectionString: o.pgUrl, options: `-c search_path=${target === 'naive' ? o.schemas.naive : o.schemas['store-postgres']}` })
  await c.connect()
  try {
    const { rows } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM votes WHERE logo_id = $1', [o.logos[target]])
    return rows[0].n
  } finally {
    await c.end()
  }
}

serveLoad<VotesInput, unknown>(async (input) => {
  switch (input.op) {
    case 'open':
      opened = await open(input)
      return opened.logos
    case 'run':
      if (opened === null) throw new Error('open first')
      return await run(opened, input.target, input.seconds, input.maxVotes)
    case 'check':
      if (opened === null) throw new Error('open first')
      return await check(opened)
    case 'close':
      if (opened !== null) {
        await opened.stores['store-postgres'].close()
        await opened.stores['store-sqlite'].close()
        await opened.naivePool.end()
        opened = null
      }
      return null
  }
})
