// SyncCache core, L1 only: versions, floors, single-flight, stale-while-revalidate, TTL, bounds.
// The "store" here is a map behind the resolver the core calls; the clock is a fake one.
import t from 'tap'
import { SyncCache, type SyncCacheOptions } from '../src/cache/sync-cache.js'
import type { Versioned } from '../src/cache/types.js'

interface Doc { name: string, n: number, version: number }

function setup (opts: Partial<SyncCacheOptions> = {}) {
  const clock = { now: 1_000 }
  const rows = new Map<string, Versioned<Doc>>()
  const reads: string[] = []
  let gate: Promise<void> | null = null
  const cache = new SyncCache({
    strategy: 'cache-first',
    ttlMs: 1_000,
    staleMs: 1_000,
    maxEntries: 100,
    maxBytes: 1_000_000,
    now: () => clock.now,
    async resolve (key) {
      reads.push(key)
      if (gate) await gate
      const row = rows.get(key)
      return row ? { version: row.version, value: { ...row.value } } : null
    },
    ...opts
  })
  const put = (key: string, name: string, version: number, n = 0) => rows.set(key, { version, value: { name, n, version } })
  /** Holds every store read until the returned function is called. */
  const hold = () => {
    let release!: () => void
    gate = new Promise((resolve) => { release = resolve })
    return () => { gate = null; release() }
  }
  return { cache, clock, rows, reads, put, hold }
}

t.test('a miss reads the store once, then L1 serves; values are frozen', async (t) => {
  const { cache, put, reads } = setup()
  put('a', 'one', 1)
  const first = await cache.get<Doc>('a')
  t.same(first, { name: 'one', n: 0, version: 1 })
  t.ok(Object.isFrozen(first))
  t.equal(await cache.get('a'), first, 'same object from L1')
  t.same(reads, ['a'])
  t.equal(await cache.get('missing'), null)
  t.same(cache.counters.l1, { hits: 1, misses: 2, staleHits: 0 })
})

t.test('single-flight: concurrent misses for one key cost one store read', async (t) => {
  const { cache, put, reads, hold } = setup()
  put('a', 'one', 1)
  const release = hold()
  const all = Promise.all(Array.from({ length: 500 }, () => cache.get<Doc>('a')))
  release()
  const results = await all
  t.equal(reads.length, 1)
  t.ok(results.every((r) => r === results[0]))
  t.equal(cache.counters.flights.joined, 499)
})

t.test('changes apply only when newer', async (t) => {
  const { cache, put } = setup()
  put('a', 'one', 3)
  await cache.get('a')
  t.notOk(cache.apply('a', { op: 'set', version: 2, value: { name: 'older', n: 0, version: 2 } }), 'older set ignored')
  t.notOk(cache.apply('a', { op: 'set', version: 3, value: { name: 'same', n: 0, version: 3 } }), 'same version ignored')
  t.equal((await cache.get<Doc>('a'))!.name, 'one')
  t.ok(cache.apply('a', { op: 'set', version: 5, value: { name: 'five', n: 0, version: 5 } }))
  t.equal((await cache.get<Doc>('a'))!.name, 'five')
  t.notOk(cache.apply('a', { op: 'set', version: 4, value: { name: 'four', n: 0, version: 4 } }), 'late older event ignored')
  t.equal((await cache.get<Doc>('a'))!.name, 'five')
})

t.test('a patch is exact on its base; on a gap it leaves a floor that refuses older values', async (t) => {
  const { cache, put, reads } = setup()
  put('a', 'one', 1, 10)
  await cache.get('a')
  t.ok(cache.apply('a', { op: 'patch', version: 2, base: 1, fields: { n: 11, version: 2 } }))
  t.same(await cache.get('a'), { name: 'one', n: 11, version: 2 }, 'patched in place, no store read')
  t.equal(reads.length, 1)

  // Version 3 (an edit) never reached us; a vote at 4 cannot be patched onto 2.
  t.ok(cache.apply('a', { op: 'patch', version: 4, base: 3, fields: { n: 12, version: 4 } }))
  t.same(cache.inspect('a'), { version: 4, floor: true, fresh: false })
  t.notOk(cache.apply('a', { op: 'set', version: 3, value: { name: 'three', n: 11, version: 3 } }), 'older than the floor')
  put('a', 'edited', 4, 12)
  t.same(await cache.get('a'), { name: 'edited', n: 12, version: 4 }, 'the floor is a miss: read from the store')
  t.equal(reads.length, 2)
})

t.test('eviction leaves a tombstone; a late older set cannot resurrect it', async (t) => {
  const { cache, put, rows } = setup()
  put('a', 'one', 1)
  await cache.get('a')
  rows.delete('a')
  t.ok(cache.apply('a', { op: 'evict', version: 2 }))
  t.notOk(cache.apply('a', { op: 'set', version: 1, value: { name: 'one', n: 0, version: 1 } }))
  t.equal(await cache.get('a'), null)
})

t.test('a change during a load supersedes it: later readers do not join the older load', async (t) => {
  const { cache, put, hold, reads } = setup()
  put('a', 'old', 1)
  const release = hold()
  const early = cache.get<Doc>('a') // reads version 1 once released
  await new Promise((resolve) => setImmediate(resolve))
  put('a', 'new', 2)
  cache.apply('a', { op: 'evict', version: 2 }) // e.g. a vote event with an unknown base: a floor at 2
  const late = cache.get<Doc>('a')
  release()
  t.equal((await late)!.version, 2, 'a read after the change sees it')
  t.equal((await early)!.version, 2, 'and the earlier read gets the newest held value too')
  t.equal(reads.length, 2)
  t.equal(cache.inspect('a')!.version, 2, 'L1 never went back to version 1')
})

t.test('a load that began before a change is not stored over it', async (t) => {
  const { cache, put, hold } = setup()
  put('a', 'old', 1)
  const release = hold()
  const early = cache.get<Doc>('a')
  await new Promise((resolve) => setImmediate(resolve))
  cache.apply('a', { op: 'set', version: 2, value: { name: 'new', n: 0, version: 2 } })
  release()
  t.equal((await early)!.name, 'new', 'the newest held value wins')
  t.equal(cache.inspect('a')!.version, 2)
})

t.test('cache-first: entries expire after the TTL', async (t) => {
  const { cache, put, reads, clock } = setup({ ttlMs: 1_000 })
  put('a', 'one', 1)
  await cache.get('a')
  clock.now += 999
  await cache.get('a')
  t.equal(reads.length, 1)
  put('a', 'changed behind our back', 2)
  clock.now += 2
  t.equal((await cache.get<Doc>('a'))!.version, 2, 'expired: read again')
  t.equal(reads.length, 2)
})

t.test('TTL 0 means no expiry', async (t) => {
  const { cache, put, reads, clock } = setup({ ttlMs: 0 })
  put('a', 'one', 1)
  await cache.get('a')
  clock.now += 365 * 24 * 3600_000
  await cache.get('a')
  t.equal(reads.length, 1)
})

t.test('stale-while-revalidate: serves the stale value and refreshes once per key', async (t) => {
  const { cache, put, reads, clock, hold } = setup({ strategy: 'stale-while-revalidate', ttlMs: 1_000, staleMs: 5_000 })
  put('a', 'one', 1)
  put('b', 'bee', 1)
  await cache.get('a')
  await cache.get('b')
  t.equal(reads.length, 2)
  put('a', 'two', 2)
  clock.now += 1_500 // stale, within the stale window
  const release = hold()
  const served = await Promise.all(Array.from({ length: 100 }, () => cache.get<Doc>('a')))
  t.ok(served.every((d) => d!.name === 'one'), 'stale value served at once, without waiting')
  await cache.get('b')
  t.same(reads.slice(2), ['a', 'b'], 'one refresh per key, however many reads')
  t.equal(cache.counters.refresh.started, 2)
  release()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal((await cache.get<Doc>('a'))!.name, 'two', 'refreshed in the background')
  t.equal(cache.inspect('a')!.fresh, true)
  t.equal(reads.filter((k) => k === 'a').length, 2)

  clock.now += 10_000 // past ttl + stale: a plain miss that waits for the store
  put('a', 'three', 3)
  t.equal((await cache.get<Doc>('a'))!.name, 'three')
})

t.test('stale-while-revalidate: a failing refresh keeps serving the stale value and reports', async (t) => {
  const errors: string[] = []
  const { cache, put, clock, rows } = setup({ strategy: 'stale-while-revalidate', ttlMs: 1_000, staleMs: 5_000, onRefreshError: (_err, key) => errors.push(key) })
  put('a', 'one', 1)
  await cache.get('a')
  clock.now += 1_500
  rows.get = () => { throw new Error('store down') }
  t.equal((await cache.get<Doc>('a'))!.name, 'one')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(errors, ['a'])
  t.equal(cache.counters.refresh.failed, 1)
})

t.test('L1 is bounded by bytes and by entries', async (t) => {
  const big = 'x'.repeat(400)
  const { cache, put } = setup({ maxBytes: 2_000, maxEntries: 1_000 })
  for (let i = 0; i < 20; i++) put(`k${i}`, big, 1)
  for (let i = 0; i < 20; i++) await cache.get(`k${i}`)
  t.ok(cache.bytes <= 2_000, `bytes ${cache.bytes} within the bound`)
  t.ok(cache.entries <= 5 && cache.entries >= 3, `${cache.entries} entries of ~430 bytes fit`)
  t.ok(cache.inspect('k19'), 'the most recent is kept')
  t.equal(cache.inspect('k0'), null, 'the least recent went first')

  const small = setup({ maxEntries: 3 })
  for (let i = 0; i < 5; i++) small.put(`k${i}`, 'v', 1)
  for (let i = 0; i < 5; i++) await small.cache.get(`k${i}`)
  t.equal(small.cache.entries, 3)
})

t.test('getMany: L1 hits, per-key single-flight loads for the rest, nulls for missing', async (t) => {
  const { cache, put, reads } = setup()
  put('a', 'A', 1)
  put('b', 'B', 1)
  await cache.get('a')
  const [a, b, c] = await cache.getMany<Doc>(['a', 'b', 'c'])
  t.equal(a!.name, 'A')
  t.equal(b!.name, 'B')
  t.equal(c, null)
  t.same(reads, ['a', 'b', 'c'])
})

t.test('clearLocal forgets L1 and voids loads in flight', async (t) => {
  const { cache, put, hold, reads } = setup()
  put('a', 'one', 1)
  await cache.get('a')
  const release = hold()
  cache.apply('a', { op: 'evict', version: 2 })
  put('a', 'two', 2)
  const pending = cache.get('a')
  cache.clearLocal()
  release()
  await pending
  t.equal(cache.inspect('a'), null, 'a load begun before the clear stores nothing')
  t.equal(cache.entries, 0)
  t.equal((await cache.get<Doc>('a'))!.name, 'two')
  t.equal(reads.length, 3)
})
