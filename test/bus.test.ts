import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { createMemoryBus } from '../src/bus/memory.js'
import { connectRedisBus } from '../src/bus/redis.js'
import { subscriberReceiver } from '../src/bus/redis-channels.js'
import type { Bus, BusMessage } from '../src/bus/types.js'
import { busConformance } from './bus.conformance.js'
import { build, privateRedis, REDIS_URL, redisPrefix, type TestLike } from './helper.js'

const quiet = { info () {}, warn () {}, error () {} }

/** A Redis bus wired the way plugins/redis.ts and plugins/bus.ts wire it; closed at teardown. */
async function redisBus (t: TestLike, url: string, prefix: string, origin: string): Promise<Bus> {
  return (await redisBusWithClient(t, url, prefix, origin)).bus
}

async function redisBusWithClient (t: TestLike, url: string, prefix: string, origin: string): Promise<{ bus: Bus, publisher: Redis }> {
  const publisher = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    connectionName: `${origin}-pub`
  })
  publisher.on('error', () => {})
  await new Promise<void>((resolve, reject) => { publisher.once('ready', resolve); publisher.once('end', reject) })
  const subscriber = publisher.duplicate({ lazyConnect: true, autoResubscribe: false, enableOfflineQueue: true, maxRetriesPerRequest: null })
  const bus = await connectRedisBus({ publisher, receiver: subscriberReceiver(subscriber, `${prefix}bus`), channel: `${prefix}bus`, origin, log: quiet })
  t.teardown(async () => {
    await bus.close()
    subscriber.disconnect()
    publisher.disconnect()
  })
  return { bus, publisher }
}

t.test('memory', async (t) => {
  busConformance(t, async () => {
    const bus = createMemoryBus('solo')
    return { a: bus, b: bus }
  })
})

t.test('redis', async (t) => {
  busConformance(t, async (t: Test) => {
    const prefix = redisPrefix()
    return { a: await redisBus(t, REDIS_URL, prefix, 'replica-a'), b: await redisBus(t, REDIS_URL, prefix, 'replica-b') }
  })
})

t.test('redis: the key prefix keeps deployments apart', async (t) => {
  const mine = await redisBus(t, REDIS_URL, redisPrefix(), 'a')
  const theirs = await redisBus(t, REDIS_URL, redisPrefix(), 'b')
  const got: BusMessage[] = []
  theirs.subscribe((m) => got.push(m))
  mine.subscribe((m) => got.push(m))
  await mine.publish({ kind: 'deadline', deadline: null, version: 9 })
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(got.length, 1, 'only the publishing deployment received it')
})

t.test('redis: publishing while Redis is down fails fast; after it returns the subscriber resubscribes and resyncs', async (t) => {
  const redis = await privateRedis(t)
  const prefix = redisPrefix()
  const a = await redisBus(t, redis.url, prefix, 'a')
  const b = await redisBus(t, redis.url, prefix, 'b')
  const resyncs = { a: 0, b: 0 }
  a.onResync(() => { resyncs.a++ })
  b.onResync(() => { resyncs.b++ })
  const got: BusMessage[] = []
  b.subscribe((m) => got.push(m))

  await redis.stop()
  const started = Date.now()
  await t.rejects(a.publish({ kind: 'deadline', deadline: null, version: 2 }), 'a publish with Redis away rejects')
  t.ok(Date.now() - started < 1500, `...within the publish timeout (${Date.now() - started} ms), not hanging`)
  await t.rejects(a.ping(), 'ping reports Redis away')

  await redis.start()
  const deadline = Date.now() + 10_000
  while ((resyncs.a === 0 || resyncs.b === 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(resyncs.a > 0 && resyncs.b > 0, `both replicas resynced after the gap (a: ${resyncs.a}, b: ${resyncs.b})`)
  await a.ping()
  await a.publish({ kind: 'deadline', deadline: null, version: 3 })
  while (got.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(got.map((m) => m.event), [{ kind: 'deadline', version: 3 }], 'messages flow again, without a reconnect by the caller')
})

/**
 * Breaks only the command connections (TYPE normal): the subscribers never see a gap, so any
 * resync must come from the notice a publisher sends once it is back. Resolves with how many
 * connections were killed, once `publisher` has seen its close.
 */
async function killPublishers (t: TestLike, url: string, publisher: Redis): Promise<number> {
  const admin = new Redis(url)
  t.teardown(() => admin.disconnect())
  const closed = new Promise((resolve) => publisher.once('close', resolve))
  const killed = Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'))
  await closed
  return killed
}

/**
 * Replicas `a` and `b` on a Redis of this test's own. `losePublish(until)` kills the publishing
 * connections, has `a` publish into the gap, then waits (at most 10 s) until `until()` holds.
 */
async function twoReplicasOnPrivateRedis (t: TestLike) {
  const redis = await privateRedis(t)
  const prefix = redisPrefix()
  const { bus: a, publisher } = await redisBusWithClient(t, redis.url, prefix, 'a')
  const b = await redisBus(t, redis.url, prefix, 'b')
  const losePublish = async (until: () => boolean) => {
    const killed = await killPublishers(t, redis.url, publisher)
    const publishFailed = await a.publish({ kind: 'deadline', deadline: null, version: 4 }).then(() => false, () => true)
    const deadline = Date.now() + 10_000
    while (!until() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    return { killed, publishFailed }
  }
  return { a, b, losePublish }
}

t.test('redis: a publish lost to a blip makes every replica resync', async (t) => {
  // Only the publishing connection breaks: the subscribers never see a gap, so the resync must
  // come from the notice the publisher sends once it is back. A private Redis: nothing else on it.
  const { b, losePublish } = await twoReplicasOnPrivateRedis(t)
  let resyncs = 0
  b.onResync(() => { resyncs++ })
  const { killed, publishFailed } = await losePublish(() => resyncs > 0)
  t.ok(killed >= 1, 'publishers disconnected')
  t.ok(publishFailed, 'the publish on the killed connection failed')
  t.ok(resyncs > 0, 'the other replica was told to resync')
})

t.test('redis: the resync notice waits for its gates (the cache replaying what it missed)', async (t) => {
  const { a, b, losePublish } = await twoReplicasOnPrivateRedis(t)
  let gateOpenedAt = 0
  a.holdResyncNotice(() => new Promise<void>((resolve) => setTimeout(() => { gateOpenedAt = Date.now(); resolve() }, 400)))
  let resyncAt = 0
  b.onResync(() => { resyncAt ||= Date.now() })
  await losePublish(() => resyncAt > 0)
  t.ok(resyncAt > 0, 'the other replica was told to resync')
  t.ok(gateOpenedAt > 0 && resyncAt >= gateOpenedAt, 'only after the gate opened')
})

t.test('the app picks the Redis bus when REDIS_URL is set and closes its subscriber', async (t) => {
  const app = await build(t, { REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() })
  t.equal(app.bus.kind, 'redis')
  await app.bus.ping()
  const embedded = await build(t)
  t.equal(embedded.bus.kind, 'memory')
})
