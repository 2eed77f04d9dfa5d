// Presence backends on their own, against the real thing: in-process, and Redis with two
// "replicas" (two backends on one key prefix). Views carry every live replica's count, in
// order (seq); a replica that stops refreshing its entry drops out once it expired and another
// replica reports; counting on one replica never waits for the others. (A replica killed for
// real, SIGKILL, is in test/presence-replicas.test.ts.)
import { Redis } from 'ioredis'
import pg from 'pg'
import { test } from 'tap'
import { subscriberReceiver } from '../src/bus/redis-channels.js'
import { createMemoryPresence } from '../src/presence/memory.js'
import { Presence } from '../src/presence/presence.js'
import { connectPostgresPresence } from '../src/presence/postgres.js'
import { connectRedisPresence } from '../src/presence/redis.js'
import type { PresenceBackend, PresenceView } from '../src/presence/types.js'
import { PG_URL, REDIS_URL, pgSchema, redisPrefix, uniqueName, type TestLike } from './helper.js'

const silent = { warn: () => {} }

async function redisBackend (t: TestLike, prefix: string, ttlMs: number): Promise<PresenceBackend> {
  const client = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  // As in the app (@fastify/redis waits for it): no offline queue, so commands need a ready client.
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
  const subscriber = new Redis(REDIS_URL, { lazyConnect: true, autoResubscribe: false, enableOfflineQueue: true, maxRetriesPerRequest: null })
  const backend = await connectRedisPresence({ client, receiver: (ch) => subscriberReceiver(subscriber, ch), sharded: false, prefix, topic: 'logos', ttlMs, log: silent })
  t.teardown(async () => {
    await backend.close()
    subscriber.disconnect()
    client.disconnect()
  })
  return backend
}

async function postgresBackend (t: TestLike, schema: string, ttlMs: number): Promise<PresenceBackend> {
  const backend = await connectPostgresPresence({ connectionString: PG_URL, schema, topic: 'logos', ttlMs, replicaId: 'test', log: { ...silent, info: () => {} } })
  t.teardown(() => backend.close())
  return backend
}

/** Backends for several replicas of one deployment: `make(ttlMs)` is one more replica. */
const kinds: Array<[string, (t: TestLike) => Promise<(ttlMs: number) => Promise<PresenceBackend>>]> = [
  ['Redis', async (t) => {
    const prefix = redisPrefix()
    return (ttlMs) => redisBackend(t, prefix, ttlMs)
  }],
  ['PostgreSQL', async (t) => {
    const schema = await pgSchema(t)
    return (ttlMs) => postgresBackend(t, schema, ttlMs)
  }]
]

async function until<T> (fn: () => T, ok: (v: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (ok(v)) return v
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(v)} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

test('in-process: the one replica\'s count is the view', async (t) => {
  const backend = createMemoryPresence()
  const seen: PresenceView[] = []
  backend.watch((v) => seen.push(v))
  t.same((await backend.report('a', 2)).members, { a: 2 })
  t.same((await backend.report('a', 2)).members, { a: 2 })
  t.equal(seen.length, 1, 'an unchanged report notifies nobody')
  t.same((await backend.report('a', 0)).members, {}, '0 removes the entry')
  t.ok(seen[1].seq > seen[0].seq, 'views are ordered')
})

for (const [kind, deployment] of kinds) {
  test(`${kind} backend`, async (t) => {
    t.test(`${kind}: two replicas see each other's counts, in order; 0 removes an entry`, async (t) => {
      const replica = await deployment(t)
      const a = await replica(10_000)
      const b = await replica(10_000)
      const atB: PresenceView[] = []
      b.watch((v) => atB.push(v))
      const first = await a.report('A', 2)
      t.same(first.members, { A: 2 })
      await until(() => atB.length, (n) => n === 1)
      t.same(atB[0], first, 'B hears the view A\'s report made')
      const both = await b.report('B', 1)
      t.same(both.members, { A: 2, B: 1 })
      t.ok(both.seq > first.seq)
      await a.report('A', 2)
      await a.report('A', 0)
      await until(() => atB.at(-1)?.members, (m) => m !== undefined && !('A' in m))
      t.same(atB.map((v) => v.members), [{ A: 2 }, { A: 2, B: 1 }, { B: 1 }], 'an unchanged count publishes nothing; views arrive in order')
      t.ok(atB.every((v, i) => i === 0 || v.seq > atB[i - 1].seq), 'seq only goes up')
    })

    t.test(`${kind}: a replica that stops refreshing drops out once its entry expired and another reports`, async (t) => {
      const replica = await deployment(t)
      const live = await replica(10_000)
      const dying = await replica(300)
      await dying.report('dead', 5)
      t.same((await live.report('live', 1)).members, { dead: 5, live: 1 })
      await new Promise((resolve) => setTimeout(resolve, 400))
      const seen: PresenceView[] = []
      live.watch((v) => seen.push(v))
      t.same((await live.report('live', 1)).members, { live: 1 }, 'expired: gone from the view')
      await until(() => seen.length, (n) => n === 1)
      t.same(seen[0].members, { live: 1 }, 'and the pruning is published, though this replica\'s count did not change')
    })
  })
}

test('PostgreSQL backend: its connections killed, it listens again, reports the gap, and hears views again', async (t) => {
  const schema = await pgSchema(t)
  const replicaId = uniqueName('killed')
  const log = { ...silent, info: () => {} }
  const killed = await connectPostgresPresence({ connectionString: PG_URL, schema, topic: 'logos', ttlMs: 10_000, replicaId, log, retry: { minMs: 20, maxMs: 100 } })
  t.teardown(() => killed.close())
  const other = await postgresBackend(t, schema, 10_000)
  let gaps = 0
  killed.onGap(() => { gaps++ })
  const seen: PresenceView[] = []
  killed.watch((v) => seen.push(v))
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  t.teardown(() => admin.end())
  const { rowCount } = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`logo-sync presence ${replicaId}`])
  t.ok((rowCount ?? 0) >= 1, 'its backends were terminated')
  await until(() => gaps, (n) => n === 1)
  t.pass('the gap is reported once it listens again')
  const view = await other.report('other', 3)
  await until(() => seen.length, (n) => n === 1)
  t.same(seen[0], view, 'views reach it again')
  t.same((await killed.report(replicaId, 1)).members, { other: 3, [replicaId]: 1 }, 'and its reports work again')
})

test('Presence over Redis: joins and leaves on two replicas reach both totals', async (t) => {
  const prefix = redisPrefix()
  const heartbeatMs = 200
  const totals: Record<string, number[]> = { A: [], B: [] }
  const replica = async (id: string) => {
    const p = new Presence({ backend: await redisBackend(t, prefix, 2 * heartbeatMs), replicaId: id, heartbeatMs, conflateMs: 20, push: (n) => totals[id].push(n), log: silent })
    return p
  }
  const a = await replica('A')
  const b = await replica('B')
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const [m1, m2, m3] = [{}, {}, {}]
  a.join(m1)
  t.equal(a.total, 1, 'a local join counts at once')
  b.join(m2)
  b.join(m3)
  t.equal(b.join(m3), false, 'joining twice counts once')
  await until(() => [totals.A.at(-1), totals.B.at(-1)], ([x, y]) => x === 3 && y === 3)
  t.pass('both replicas push 3')
  b.leave(m3)
  await until(() => totals.A.at(-1), (x) => x === 2)
  t.pass('a leave on B reaches A')
  t.ok(totals.A.every((n, i) => i === 0 || totals.A[i - 1] !== n), 'no total is pushed twice in a row')
})
