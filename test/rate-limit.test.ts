// The shared rate-limit store (scaled mode): limits hold across replicas, spent from leases of
// a tenth of the budget (no Redis round trip per request), never more than the limit over all
// replicas, per replica while Redis is away. Real Redis throughout; two limiters on one prefix
// stand for two replicas.
import { Redis } from 'ioredis'
import t from 'tap'
import { createSharedLimiter, LEASE_SHARE, LEASE_TIMEOUT_MS, type SharedLimiter } from '../src/rate-limit/shared-store.js'
import { REDIS_URL, bearer, build, privateRedis, redisPrefix, scaledEnv, token, type TestLike } from './helper.js'

const WINDOW = 60_000

function replica (t: TestLike, redis: Redis, prefix: string): SharedLimiter & { hit: (key: string, max: number, window?: number) => Promise<number> } {
  const limiter = createSharedLimiter({ redis, prefix })
  const store = new limiter.Store({})
  const hit = (key: string, max: number, window = WINDOW) => new Promise<number>((resolve, reject) => {
    store.incr(key, (err, res) => err ? reject(err) : resolve(res!.current), window, max)
  })
  return Object.assign(limiter, { hit })
}

function client (t: TestLike, url = REDIS_URL): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  return redis
}

const ready = (redis: Redis) => redis.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => redis.once('ready', () => resolve()))
const allowed = (counts: number[], max: number) => counts.filter((c) => c <= max).length

t.test(`a replica spends leases of ${LEASE_SHARE * 100}% of the budget: one Redis round trip per lease, not per request`, async (t) => {
  const redis = client(t)
  await ready(redis)
  const prefix = redisPrefix()
  const a = replica(t, redis, prefix)
  const counts: number[] = []
  for (let i = 0; i < 40; i++) counts.push(await a.hit('ip:1', 100))
  t.same(counts, Array.from({ length: 40 }, (_, i) => i + 1), 'each request sees its own count')
  t.equal(a.stats.leases, 4, 'four leases of 10 for 40 requests')
  t.equal(Number(await redis.get(`${prefix}ip:1`)), 40, 'Redis holds what was leased')
  const ttl = await redis.pttl(`${prefix}ip:1`)
  t.ok(ttl > 0 && ttl <= WINDOW, 'the key expires with the window')
  await Promise.all(Array.from({ length: 30 }, () => a.hit('ip:2', 100)))
  t.equal(a.stats.leases, 6, '30 requests arriving together: a lease of 10 while they wait, then one for the 20 still waiting')
})

t.test('never more than the limit over all replicas, however the requests are spread', async (t) => {
  const redis = client(t)
  await ready(redis)
  const prefix = redisPrefix()
  const [a, b] = [replica(t, redis, prefix), replica(t, redis, prefix)]
  const max = 20
  const together = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? b : a).hit('user:alice', max)))
  t.equal(allowed(together, max), max, `${max} allowed of 60 arriving at once on two replicas`)
  t.ok(await a.hit('user:alice', max) > max, 'and the next one is refused on either replica')
  t.ok(await b.hit('user:alice', max) > max)

  const one = (i: number) => i % 3 === 0 ? a : b
  const spread: number[] = []
  for (let i = 0; i < 50; i++) spread.push(await one(i).hit('user:bob', 30))
  t.equal(allowed(spread, 30), 30, 'one after another, alternating: exactly the limit')
})

t.test("a key's first request on a replica does not wait for its lease: the limit plus one per replica at most", async (t) => {
  const redis = client(t)
  await ready(redis)
  const prefix = redisPrefix()
  const [a, b, c] = [replica(t, redis, prefix), replica(t, redis, prefix), replica(t, redis, prefix)]
  const max = 10
  const onA: number[] = []
  for (let i = 0; i < max; i++) onA.push(await a.hit('user:carol', max))
  t.equal(allowed(onA, max), max, 'a spends the whole budget')
  const leasesBefore = b.stats.leases
  t.equal(await b.hit('user:carol', max), 1, 'b lets its first request through before its lease answers (the documented one over)')
  t.equal(b.stats.leases, leasesBefore + 1, 'and leases in the background')
  t.ok(await b.hit('user:carol', max) > max, 'the lease found nothing left: the next one on b is refused')
  t.ok(await b.hit('user:carol', max) > max)
  t.equal(await c.hit('user:carol', max), 1, 'c: one more through, once')
  t.ok(await c.hit('user:carol', max) > max, 'then refused')
  t.equal(Number(await redis.get(`${prefix}user:carol`)), max, 'Redis never leased more than the limit')
})

t.test('a lease held by a replica the client left is the only thing that refuses it early', async (t) => {
  const redis = client(t)
  await ready(redis)
  const prefix = redisPrefix()
  const [a, b] = [replica(t, redis, prefix), replica(t, redis, prefix)]
  t.equal(await a.hit('k', 100), 1, 'a leases 10 and spends 1')
  const onB: number[] = []
  for (let i = 0; i < 100; i++) onB.push(await b.hit('k', 100))
  t.equal(allowed(onB, 100), 90, 'b gets the other 90: the 9 a still holds are refused early (documented)')
  t.ok(await a.hit('k', 100) <= 100, 'a can still spend its lease')
})

t.test('a new window starts when the old one ends', async (t) => {
  const redis = client(t)
  await ready(redis)
  const a = replica(t, redis, redisPrefix())
  for (let i = 0; i < 3; i++) await a.hit('w', 3, 300)
  t.ok(await a.hit('w', 3, 300) > 3, 'over the limit in the window')
  const until = Date.now() + 5000
  let count = 4
  while (count > 3 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    count = await a.hit('w', 3, 300)
  }
  t.equal(count, 1, 'counting starts over after the window')
})

t.test('with Redis away each replica holds the limit on its own and no request fails', async (t) => {
  const server = await privateRedis(t)
  const redis = client(t, server.url)
  await ready(redis)
  const prefix = redisPrefix()
  const a = replica(t, redis, prefix)
  await server.stop()
  const until = Date.now() + 5000
  while (redis.status === 'ready' && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20))
  const counts: number[] = []
  for (let i = 0; i < 12; i++) counts.push(await a.hit('down', 10))
  t.same(counts, Array.from({ length: 12 }, (_, i) => i + 1), 'counted here: the 11th and 12th are over the limit')
  await server.start()
  await ready(redis)
  t.equal(await a.hit('back', 10), 1, 'leases again once Redis answers')
  t.equal(Number(await redis.get(`${prefix}back`)), 1)
})

t.test('with Redis frozen (connected, never answering), a request waiting for a lease is answered within the lease timeout, counted here', async (t) => {
  const server = await privateRedis(t)
  const redis = client(t, server.url)
  await ready(redis)
  const a = replica(t, redis, redisPrefix())
  for (let i = 0; i < 10; i++) await a.hit('frozen', 100) // the first lease (10) spent
  await server.freeze()
  t.teardown(() => server.thaw())
  t.equal(redis.status, 'ready', 'the connection still looks fine')
  const started = Date.now()
  const answered = await Promise.race([a.hit('frozen', 100), new Promise<string>((resolve) => setTimeout(resolve, 5000, 'still waiting after 5 s'))])
  t.equal(answered, 1, 'counted by this replica alone')
  t.ok(Date.now() - started < LEASE_TIMEOUT_MS + 1000, `answered after about the lease timeout (${Date.now() - started} ms)`)
})

t.test('with Redis up but refusing leases (out of memory), the limit holds per replica: no request goes through unpaid', async (t) => {
  const server = await privateRedis(t)
  const redis = client(t, server.url)
  await ready(redis)
  const a = replica(t, redis, redisPrefix())
  await redis.config('SET', 'maxmemory-policy', 'noeviction')
  await redis.config('SET', 'maxmemory', '1')
  t.teardown(() => redis.config('SET', 'maxmemory', '0').catch(() => {}))
  t.equal(redis.status, 'ready', 'the connection is up')
  const counts: number[] = []
  for (let i = 0; i < 6; i++) counts.push(await a.hit('oom', 3))
  t.same(counts, [1, 2, 3, 4, 5, 6], 'counted here, one by one: the 4th to 6th are over the limit')
})

t.test('in the app: a cached GET costs no Redis command for its rate limit; the vote limit holds across replicas', async (t) => {
  const server = await privateRedis(t)
  const env = await scaledEnv(t, { REDIS_URL: server.url, RATE_LIMIT_MAX: '1000', VOTE_RATE_LIMIT: '3' })
  const [a, b] = [await build(t, env), await build(t, env)]
  const logo = (await a.inject({ method: 'POST', url: '/logos', headers: bearer(await token('root', 'admin')), payload: { title: 'L', imageUrl: 'https://x.test/l.png' } })).json() as { _id: string }
  t.equal((await a.inject(`/logos/${logo._id}`)).statusCode, 200, 'the cache is warm')
  const stats = client(t, server.url)
  await ready(stats)
  const scripts = async () => {
    const info = await stats.info('commandstats')
    return [...info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)].reduce((n, m) => n + Number(m[2]), 0)
  }
  const before = await scripts()
  for (let i = 0; i < 50; i++) t.equal((await a.inject(`/logos/${logo._id}`)).statusCode, 200)
  const used = await scripts() - before
  t.ok(used <= 1, `50 cached reads ran ${used} Redis scripts (a Redis-backed limiter runs one per request)`)

  const alice = await token('alice')
  const statuses: number[] = []
  for (const app of [a, b, a, b]) statuses.push((await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(alice) })).statusCode)
  t.same(statuses, [200, 200, 200, 429], 'the fourth vote in a minute is refused, whichever replica takes it')
})
