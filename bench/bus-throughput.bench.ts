// How many committed changes per second each cross-replica bus carries on this machine, for the
// README's "when to add Redis". Self-contained: it talks to the PostgreSQL and Redis the tests
// use (a schema and key prefix of its own, dropped afterwards), builds the stores and buses
// itself (no HTTP: what is measured is the write path's store commit + bus, and the fan-out),
// and is bounded in time (BenchOptions.durationS per path) and count (MAX_CHANGES).
//   notify-tx      votes through the PostgreSQL store, the LISTEN/NOTIFY bus publishing inside
//                  each vote's transaction (PostgreSQL alone)
//   redis-after    votes through the same store, the Redis bus publishing after each commit
//                  (PostgreSQL + Redis)
//   notify-raw     the medium alone: `SELECT pg_notify(...)` in autocommit (each one a commit)
//   redis-raw      the medium alone: Redis PUBLISH
// Every change must reach both listening replicas; the report says how many did, and how long
// from publish to delivery. Run alone: `npx tsx bench/bus-throughput.bench.ts` (or through
// `npm run bench -- bus-throughput`).
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { pathToFileURL } from 'node:url'
import { Redis } from 'ioredis'
import pg from 'pg'
import { channelForSchema } from '../src/bus/notify-payload.js'
import { connectPostgresBus } from '../src/bus/postgres.js'
import { subscriberReceiver } from '../src/bus/redis-channels.js'
import { connectRedisBus } from '../src/bus/redis.js'
import type { Bus, BusEvent } from '../src/bus/types.js'
import { changeOf } from '../src/changes.js'
import { createPostgresStore } from '../src/store/postgres.js'
import type { Store } from '../src/store/types.js'
import { row, type BenchOptions, type BenchReport } from './lib.js'

export const title = 'Cross-replica bus throughput: PostgreSQL LISTEN/NOTIFY vs Redis pub/sub'

const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
/** Concurrent writers, as many replicas' request handlers would be. */
const WRITERS = 16
const LOGOS = 16
const MAX_CHANGES = 200_000
const quiet = { info () {}, warn () {}, error () {} }

interface PathResult {
  path: string
  committed: number
  seconds: number
  delivered: number[]
  latencies: number[]
}

const percentile = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}

/** Two listening replicas: counts what each received and the publish-to-delivery times. */
function listeners (buses: Bus[]) {
  const delivered = buses.map(() => 0)
  const latencies: number[] = []
  buses.forEach((bus, i) => bus.subscribe((m) => {
    delivered[i]++
    if (i === 1 && latencies.length < 100_000) latencies.push(Date.now() - m.publishedAt)
  }))
  return { delivered, latencies }
}

/** Runs `op` from WRITERS loops for `seconds` (at most MAX_CHANGES), then waits for delivery. */
async function drive (path: string, seconds: number, buses: Bus[], op: (i: number) => Promise<void>): Promise<PathResult> {
  const { delivered, latencies } = listeners(buses)
  let next = 0
  let committed = 0
  const started = performance.now()
  const until = started + seconds * 1000
  await Promise.all(Array.from({ length: WRITERS }, async () => {
    while (performance.now() < until && next < MAX_CHANGES) {
      await op(next++)
      committed++
    }
  }))
  const elapsed = (performance.now() - started) / 1000
  const deadline = Date.now() + 30_000
  while (delivered.some((n) => n < committed) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  return { path, committed, seconds: elapsed, delivered, latencies }
}

async function postgresReplica (schema: string, origin: string): Promise<{ store: Store, bus: Bus }> {
  const store = await createPostgresStore({ connectionString: PG_URL, schema, max: WRITERS })
  const bus = await connectPostgresBus({ connectionString: PG_URL, store, channel: channelForSchema(schema), origin, log: quiet })
  return { store, bus }
}

async function redisBus (prefix: string, origin: string): Promise<{ bus: Bus, close: () => void }> {
  const publisher = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  await new Promise<void>((resolve, reject) => { publisher.once('ready', resolve); publisher.once('error', reject) })
  const subscriber = publisher.duplicate({ lazyConnect: true, autoResubscribe: false, enableOfflineQueue: true, maxRetriesPerRequest: null })
  const bus = await connectRedisBus({ publisher, receiver: subscriberReceiver(subscriber, `${prefix}bus`), channel: `${prefix}bus`, origin, log: quiet })
  return { bus, close: () => { subscriber.disconnect(); publisher.disconnect() } }
}

async function makeLogos (store: Store): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < LOGOS; i++) ids.push((await store.createLogo({ title: `Bench ${i}`, imageUrl: `https://example.com/${i}.png` }))._id)
  return ids
}

export default async function busThroughput (opts: BenchOptions): Promise<BenchReport> {
  const seconds = opts.durationS
  const tag = randomBytes(4).toString('hex')
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  const schemas = [`bench_notify_${tag}`, `bench_redis_${tag}`, `bench_raw_${tag}`]
  const cleanups: (() => Promise<void> | void)[] = []
  const loadBefore = loadavg()[0]
  const results: PathResult[] = []
  try {
    // notify-tx: a writing replica and a second one, both listening.
    {
      const a = await postgresReplica(schemas[0], 'a')
      const b = await postgresReplica(schemas[0], 'b')
      cleanups.push(async () => { await a.bus.close(); await b.bus.close(); await a.store.close(); await b.store.close() })
      const logos = await makeLogos(a.store)
      await new Promise((resolve) => setTimeout(resolve, 200)) // the creations' notifications pass first
      results.push(await drive('notify-tx', seconds, [a.bus, b.bus], async (i) => {
        await a.store.castVote(logos[i % LOGOS], `user${i}`)
      }))
    }
    // redis-after: the same store (no transaction step), then the Redis bus after the commit.
    {
      const store = await createPostgresStore({ connectionString: PG_URL, schema: schemas[1], max: WRITERS })
      const prefix = `bench:${tag}:`
      const a = await redisBus(prefix, 'a')
      const b = await redisBus(prefix, 'b')
      cleanups.push(async () => { await a.bus.close(); await b.bus.close(); a.close(); b.close(); await store.close() })
      const logos = await makeLogos(store)
      results.push(await drive('redis-after', seconds, [a.bus, b.bus], async (i) => {
        const outcome = await store.castVote(logos[i % LOGOS], `user${i}`)
        await a.bus.afterCommit(changeOf.vote(outcome, `user${i}`)!)
      }))
    }
    // notify-raw: autocommit pg_notify from WRITERS connections, two listeners.
    {
      const a = await postgresReplica(schemas[2], 'a')
      const b = await postgresReplica(schemas[2], 'b')
      const pool = new pg.Pool({ connectionString: PG_URL, max: WRITERS })
      cleanups.push(async () => { await a.bus.close(); await b.bus.close(); await a.store.close(); await b.store.close(); await pool.end() })
      const channel = channelForSchema(schemas[2])
      const event: BusEvent = { kind: 'votes', logoId: 'bench', totalVotes: 1, version: 2, userId: 'u', voted: true }
      results.push(await drive('notify-raw', seconds, [a.bus, b.bus], async () => {
        await pool.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ origin: 'raw', publishedAt: Date.now(), events: [event] })])
      }))
    }
    // redis-raw: PUBLISH, two subscribers.
    {
      const prefix = `bench:${tag}:raw:`
      const a = await redisBus(prefix, 'a')
      const b = await redisBus(prefix, 'b')
      cleanups.push(async () => { await a.bus.close(); await b.bus.close(); a.close(); b.close() })
      const event: BusEvent = { kind: 'votes', logoId: 'bench', totalVotes: 1, version: 2, userId: 'u', voted: true }
      results.push(await drive('redis-raw', seconds, [a.bus, b.bus], () => a.bus.publish(event)))
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup()
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  }

  const rate = (r: PathResult) => r.committed / r.seconds
  const by = (path: string) => results.find((r) => r.path === path)!
  const allDelivered = results.every((r) => r.delivered.every((n) => n === r.committed))
  const describe: Record<string, string> = {
    'notify-tx': 'vote commits, NOTIFY inside each transaction (PostgreSQL alone)',
    'redis-after': 'vote commits, Redis PUBLISH after each commit (PostgreSQL + Redis)',
    'notify-raw': 'the medium alone: autocommit `pg_notify` (each a commit)',
    'redis-raw': 'the medium alone: Redis `PUBLISH`'
  }
  const markdown = [
    `## ${title}`,
    '',
    '| path | changes/s | delivered (replica 1, 2) of committed | delivery latency p50 / p99 ms |',
    '|---|---|---|---|',
    ...results.map((r) => `| \`${r.path}\`: ${describe[r.path]} | **${rate(r).toFixed(0)}** | ${r.delivered.join(', ')} of ${r.committed} | ${percentile(r.latencies, 0.5)} / ${percentile(r.latencies, 0.99)} |`),
    '',
    `Votes with NOTIFY in the transaction / votes then Redis: **${(rate(by('notify-tx')) / rate(by('redis-after'))).toFixed(2)}**; ` +
      `NOTIFY / Redis PUBLISH as media: **${(rate(by('notify-raw')) / rate(by('redis-raw'))).toFixed(3)}**. ` +
      (allDelivered ? 'Every committed change reached both replicas.' : 'NOT every committed change reached both replicas within 30 s.'),
    '',
    `${WRITERS} concurrent writers, ${LOGOS} logos, ${seconds} s per path, one process (stores, buses and listeners in this one; the servers on loopback). ` +
      `Load average (1 min) ${loadBefore.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end.`,
    ''
  ].join('\n')
  const note = allDelivered ? undefined : 'not every change reached both replicas'
  const scenarios = [
    row('bus-throughput votes: NOTIFY in the transaction vs Redis after commit', rate(by('notify-tx')), rate(by('redis-after')), { unit: 'changes/s', note }),
    row('bus-throughput media: pg_notify vs Redis PUBLISH', rate(by('notify-raw')), rate(by('redis-raw')), { unit: 'changes/s', note })
  ]
  return { title, ok: allDelivered, markdown, scenarios }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const durationS = Number(process.env.BENCH_DURATION_S ?? 5)
  const report = await busThroughput({ durationS, warmupS: 0, connections: WRITERS, rounds: 1, quick: false })
  console.log(report.markdown)
  process.exitCode = report.ok ? 0 : 1
}
