// One L2 conformance suite, run unchanged on a single Redis node and on a Redis Cluster: the
// compare-on-version Lua script, floors, the generation-guarded index, and two cache cores
// sharing one L2 as two replicas would. The prefix carries a hash tag, as the app's does.
import type { Test } from 'tap'
import { createRedisL2 } from '../src/cache/redis-l2.js'
import { SyncCache } from '../src/cache/sync-cache.js'
import { createCounters, type L2 } from '../src/cache/types.js'
import { scanKeys, type RedisClient } from '../src/redis-client.js'
import { redisPrefix, type TestLike } from './helper.js'

const quiet = { warn () {}, info () {} }

/** A connected client of the medium under test (single node or Cluster), closed at teardown. */
export type MakeClient = (t: TestLike) => Promise<RedisClient>

export function l2Conformance (t: Test, client: MakeClient): void {
  async function setup (t: TestLike, ttlMs = 60_000) {
    const redis = await client(t)
    const prefix = `{${redisPrefix()}cache}:`
    t.teardown(async () => {
      for await (const { node, keys } of scanKeys(redis, `${prefix}*`)) await node.unlink(...keys)
    })
    const counters = createCounters()
    const make = (r: RedisClient = redis) => createRedisL2({ redis: r, prefix, ttlMs, floorTtlMs: 120_000, timeoutMs: 1_000, counters, log: quiet })
    const l2 = make()
    t.teardown(() => l2.close())
    const raw = async (key: string) => {
      const s = await redis.get(prefix + key)
      return s === null ? null : JSON.parse(s) as { v: number, d?: Record<string, unknown> }
    }
    return { redis, prefix, counters, l2, make, raw }
  }

  t.test('set: only a newer version replaces the stored one', async (t) => {
    const { l2, raw, counters, redis, prefix } = await setup(t)
    await l2.write('k', { op: 'set', version: 2, value: { name: 'two' } })
    await l2.write('k', { op: 'set', version: 1, value: { name: 'one' } })
    await l2.write('k', { op: 'set', version: 2, value: { name: 'two again' } })
    t.same(await raw('k'), { v: 2, d: { name: 'two' } })
    await l2.write('k', { op: 'set', version: 3, value: { name: 'three' } })
    t.same(await raw('k'), { v: 3, d: { name: 'three' } })
    t.equal(counters.l2.writes, 2)
    t.equal(counters.l2.rejected, 2)
    const ttl = await redis.pttl(`${prefix}k`)
    t.ok(ttl > 59_000 && ttl <= 60_000, `JSON with a TTL (${ttl} ms)`)
    t.same(await l2.get('k'), { v: 3, d: { name: 'three' } })
    t.equal(await l2.get('nothing'), null)
  })

  t.test('patch: exact on its base (through cjson), a floor on a gap, refused when older', async (t) => {
    const { l2, raw } = await setup(t)
    const logo = { _id: 'L1', title: 'Ünïcode / slash', imageUrl: 'https://x.test/a.png', totalVotes: 4, version: 7, createdAt: '2024-01-01T00:00:00.000Z', updatedAt: '2024-01-01T00:00:00.000Z' }
    await l2.write('logo:L1', { op: 'set', version: 7, value: logo })
    await l2.write('logo:L1', { op: 'patch', version: 8, base: 7, fields: { totalVotes: 5, version: 8 } })
    t.same(await raw('logo:L1'), { v: 8, d: { ...logo, totalVotes: 5, version: 8 } }, 'fields merged, the rest intact')
    await l2.write('logo:L1', { op: 'patch', version: 8, base: 7, fields: { totalVotes: 99, version: 8 } })
    t.equal((await raw('logo:L1'))!.d!.totalVotes, 5, 'a replayed patch changes nothing')

    await l2.write('logo:L1', { op: 'patch', version: 10, base: 9, fields: { totalVotes: 6, version: 10 } })
    t.same(await raw('logo:L1'), { v: 10 }, 'version 9 never arrived: a floor at 10')
    await l2.write('logo:L1', { op: 'set', version: 9, value: { ...logo, version: 9 } })
    t.same(await raw('logo:L1'), { v: 10 }, 'older than the floor: refused')
    await l2.write('logo:L1', { op: 'set', version: 10, value: { ...logo, totalVotes: 6, version: 10 } })
    t.equal((await raw('logo:L1'))!.d!.totalVotes, 6, 'the value at the floor version is accepted')
    t.equal((await l2.get('missing')), null)

    await l2.write('logo:new', { op: 'patch', version: 3, base: 2, fields: { totalVotes: 1 } })
    t.same(await raw('logo:new'), { v: 3 }, 'no entry to patch: a floor')
  })

  t.test('evict: a tombstone that a slow older write cannot overwrite', async (t) => {
    const { l2, raw, redis, prefix } = await setup(t)
    await l2.write('logo:D', { op: 'set', version: 4, value: { name: 'doomed' } })
    await l2.write('logo:D', { op: 'evict', version: 5 })
    t.same(await raw('logo:D'), { v: 5 })
    t.ok(await redis.pttl(`${prefix}logo:D`) > 60_000, 'floors use the (longer) floor TTL')
    await l2.write('logo:D', { op: 'set', version: 4, value: { name: 'doomed' } })
    t.same(await raw('logo:D'), { v: 5 }, 'still gone')
  })

  t.test('racing writers through two connections end at the highest version', async (t) => {
    const { make, raw, l2 } = await setup(t)
    const other = make(await client(t))
    t.teardown(() => other.close())
    const versions = Array.from({ length: 200 }, (_, i) => i + 1)
    const shuffled = versions.map((v) => ({ v, r: Math.random() })).sort((a, b) => a.r - b.r).map((x) => x.v)
    await Promise.all(shuffled.map((v, i) => (i % 2 ? other : l2).write('race', { op: 'set', version: v, value: { v } })))
    t.same(await raw('race'), { v: 200, d: { v: 200 } })
  })

  t.test('generation-guarded entries: a read from before a bump is refused', async (t) => {
    const { l2 } = await setup(t)
    const before = await l2.readGeneration('logos:index')
    t.equal(before, '0')
    await l2.bumpGeneration('logos:index') // a logo was created between the read and the write
    await l2.setIfGeneration('logos:index', before!, ['a'], 60_000)
    t.equal(await l2.get('logos:index'), null, 'stale index refused')
    const now = await l2.readGeneration('logos:index')
    await l2.setIfGeneration('logos:index', now!, ['a', 'b'], 60_000)
    t.same((await l2.get('logos:index'))!.d, ['a', 'b'])
    await l2.bumpGeneration('logos:index')
    t.equal(await l2.get('logos:index'), null, 'a bump drops the entry')
  })

  t.test('two cores on one L2: the second replica is served by L2, not the store', async (t) => {
    const { l2, make, counters } = await setup(t)
    const l2b: L2 = make(await client(t))
    t.teardown(() => l2b.close())
    let storeReads = 0
    const resolve = async () => { storeReads++; return { version: 3, value: { name: 'shared', version: 3 } } }
    const opts = { strategy: 'cache-first' as const, ttlMs: 60_000, staleMs: 0, maxEntries: 100, maxBytes: 1_000_000, resolve }
    const a = new SyncCache({ ...opts, l2 })
    const b = new SyncCache({ ...opts, l2: l2b, counters })
    t.same(await a.get('doc'), { name: 'shared', version: 3 })
    t.same(await b.get('doc'), { name: 'shared', version: 3 })
    t.equal(storeReads, 1)
    t.equal(b.counters.l2.hits, 1)

    // A write through A: L2 gets it; B's L1 learns it from the bus (here: apply).
    await a.write('doc', { op: 'patch', version: 4, base: 3, fields: { version: 4 } })
    b.apply('doc', { op: 'patch', version: 4, base: 3, fields: { version: 4 } })
    t.same(await b.get('doc'), { name: 'shared', version: 4 })
    t.same(await l2.get('doc'), { v: 4, d: { name: 'shared', version: 4 } })
    t.equal(storeReads, 1)
  })

  t.test('an L2 entry older than what L1 was told about is a miss', async (t) => {
    const { l2 } = await setup(t)
    let version = 5
    const core = new SyncCache({ strategy: 'cache-first', ttlMs: 60_000, staleMs: 0, maxEntries: 100, maxBytes: 1_000_000, l2, resolve: async () => ({ version, value: { version } }) })
    await l2.write('doc', { op: 'set', version: 5, value: { version: 5 } }) // e.g. the writer's L2 write was lost
    version = 6
    core.apply('doc', { op: 'evict', version: 6 }) // the bus said 6 exists
    t.same(await core.get('doc'), { version: 6 }, 'read from the store, not the stale L2 entry')
    t.same(await l2.get('doc'), { v: 6, d: { version: 6 } }, 'and L2 repaired')
  })
}
