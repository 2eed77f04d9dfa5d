// The real app as the benchmarks start it (bench/app-server.ts = buildApp, as src/server.ts), in
// each of its two modes, on its own SQLite file / PostgreSQL schema and Redis key prefix, pinned
// to the server core; plus logos made through the REST API and the clean-up afterwards.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { createSigner } from 'fast-jwt'
import { Redis } from 'ioredis'
import pg from 'pg'
import { startChild, type ChildOptions, type ChildServer } from './lib.js'

export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const SECRET = 'bench-secret-bench-secret-bench-secret'

export const adminToken = () => createSigner({ key: SECRET, algorithm: 'HS256', expiresIn: 3_600_000 })({ sub: 'bench-admin', role: 'admin' })

export type Mode = 'embedded' | 'scaled'

export interface AppServer extends ChildServer {
  mode: Mode
  /** Drops what the server left behind (SQLite directory, PostgreSQL schema, Redis keys); after stop(). */
  dispose: () => Promise<void>
  schema?: string
  redisPrefix?: string
  /** Embedded: the SQLite database file. */
  sqliteFile?: string
}

/** A fresh lower-case name for a PostgreSQL schema or Redis prefix. */
export const benchName = (prefix: string) => `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`

export async function dropSchema (schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  try { await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`) } finally { await c.end() }
}

export async function deleteRedisKeys (prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  try {
    // Keys are `<prefix>…` or hash-tagged `{<prefix>…}…`.
    for (const pattern of [`${prefix}*`, `{${prefix}*`]) {
      let cursor = '0'
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
        cursor = next
        if (keys.length > 0) await redis.del(...keys)
      } while (cursor !== '0')
    }
  } finally {
    redis.disconnect()
  }
}

/**
 * The app in `mode`: embedded = SQLite in a temp directory, in-process bus; scaled = PostgreSQL
 * (a schema of its own) + Redis (a key prefix of its own: bus, L2 cache, rate-limit leases).
 * Rate limits stay on (every request pays for them) but never say no to the benchmark.
 */
export async function startApp (mode: Mode, env: Record<string, string> = {}, opts: ChildOptions = {}): Promise<AppServer> {
  const common = {
    NODE_ENV: 'development', // production hides /_debug/cache, which the read scenarios check
    SEED_DEMO_DATA: 'false',
    JWT_SECRET: SECRET,
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    RATE_LIMIT_MAX: '1000000000',
    VOTE_RATE_LIMIT: '1000000000',
    CACHE_DEBUG_ROUTES: 'true',
    CACHE_TTL_MS: '600000'
  }
  if (mode === 'embedded') {
    const dataDir = mkdtempSync(join(tmpdir(), 'logo-sync-bench-'))
    try {
      const server = await startChild('bench/app-server.ts', { ...common, DATA_DIR: dataDir, ...env }, '/healthz', opts)
      return { ...server, mode, sqliteFile: join(dataDir, 'logo-sync.db'), dispose: async () => rmSync(dataDir, { recursive: true, force: true }) }
    } catch (err) {
      rmSync(dataDir, { recursive: true, force: true })
      throw err
    }
  }
  const schema = benchName('bench')
  const redisPrefix = `${schema}:`
  const dispose = async () => { await dropSchema(schema); await deleteRedisKeys(redisPrefix) }
  try {
    const server = await startChild('bench/app-server.ts', {
      ...common,
      DATABASE_URL: PG_URL,
      DATABASE_SCHEMA: schema,
      DATABASE_POOL_MAX: '20',
      REDIS_URL,
      REDIS_KEY_PREFIX: redisPrefix,
      ...env
    }, '/healthz', opts)
    return { ...server, mode, dispose, schema, redisPrefix }
  } catch (err) {
    await dispose()
    throw err
  }
}

/** Creates `n` logos through POST /logos; their ids in order. */
export async function createLogos (url: string, n: number, tag = 'Bench'): Promise<string[]> {
  const token = adminToken()
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/logos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: `${tag} logo ${i}`, imageUrl: `https://example.com/logo-${i}.png`, description: `Benchmark logo number ${i}, with a description of ordinary length`, author: 'bench' })
    })
    if (res.status !== 201) throw new Error(`could not create a logo: ${res.status} ${await res.text()}`)
    ids.push((await res.json() as { _id: string })._id)
  }
  return ids
}

/** The vote rows of a logo, read from the server's database directly (not through the app). */
export async function voteRows (app: AppServer, logoId: string): Promise<number> {
  if (app.sqliteFile !== undefined) {
    const db = new Database(app.sqliteFile, { readonly: true })
    try { return (db.prepare('SELECT count(*) AS n FROM votes WHERE logo_id = ?').get(logoId) as { n: number }).n } finally { db.close() }
  }
  const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${app.schema!}` })
  await c.connect()
  try {
    return (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM votes WHERE logo_id = $1', [logoId])).rows[0].n
  } finally {
    await c.end()
  }
}
