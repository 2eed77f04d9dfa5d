// The Redis L2 on the real shared Redis (own key prefix): the L2 conformance suite
// (test/l2.conformance.ts, also run on a Cluster by redis-cluster.test.ts), and the replay of
// writes missed while Redis was away.
import { Redis } from 'ioredis'
import t from 'tap'
import { createRedisL2 } from '../src/cache/redis-l2.js'
import { createCounters } from '../src/cache/types.js'
import { REDIS_URL, type TestLike } from './helper.js'
import { l2Conformance } from './l2.conformance.js'

const quiet = { warn () {}, info () {} }

async function client (t: TestLike): Promise<Redis> {
  const redis = new Redis(REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true })
  await redis.connect()
  t.teardown(() => redis.quit().catch(() => redis.disconnect()))
  return redis
}

l2Conformance(t, client)

t.test('settled() waits for the writes missed while Redis was away to be replayed', async (t) => {
  const { privateRedis } = await import('./helper.js')
  const server = await privateRedis(t)
  const redis = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 50, lazyConnect: true })
  redis.on('error', () => {})
  await redis.connect()
  t.teardown(() => redis.disconnect())
  const l2 = createRedisL2({ redis, prefix: 'settle:', ttlMs: 60_000, floorTtlMs: 120_000, timeoutMs: 500, counters: createCounters(), log: quiet })
  t.teardown(() => l2.close())
  await l2.settled()
  t.pass('settled at once with nothing missed')

  await server.stop()
  await l2.write('k', { op: 'set', version: 3, value: { n: 3 } })
  t.equal(l2.pendingWrites, 1, 'the write was missed and remembered')
  let settled = false
  const done = l2.settled().then(() => { settled = true })
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.notOk(settled, 'not settled while Redis is away')

  await server.start()
  await done
  t.equal(l2.pendingWrites, 0, 'settled once the replay ended')
  const check = new Redis(server.url)
  t.teardown(() => check.disconnect())
  t.match(JSON.parse((await check.get('settle:k'))!), { v: 3 }, 'and the missed write is in Redis by then')
})
