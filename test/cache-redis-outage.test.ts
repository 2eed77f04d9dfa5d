// Redis goes away under a running app (a private redis-server of this test's own, never the
// shared one): reads and writes keep working from L1 and the store, the outage is logged once,
// and once Redis is back the missed L2 writes are replayed and L2 fills again.
import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import t from 'tap'
import { bearer, build, privateRedis, scaledEnv, token } from './helper.js'

const UNAVAILABLE = 'cache L2 (Redis) unavailable'
const BACK = 'cache L2 (Redis) reachable again'

async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('Redis away: L1 and the store carry on, logged once; back: L2 replayed and refilled', async (t) => {
  const redisServer = await privateRedis(t)
  const env = await scaledEnv(t, { REDIS_URL: redisServer.url, LOG_LEVEL: 'info', RATE_LIMIT_MAX: '100000', VOTE_RATE_LIMIT: '100000' })
  const lines: { msg?: string, level: number }[] = []
  const logStream = new Writable({
    write (chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
      done()
    }
  })
  const app = await build(t, env, { logStream })
  const said = (text: string) => lines.filter((l) => l.msg?.startsWith(text)).length
  const admin = bearer(await token('root', 'admin'))
  const prefix = `{${env.REDIS_KEY_PREFIX}cache}:` // the L2 key layout: a hash tag, so one Lua script never spans Cluster slots

  const logo = (await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: { title: 'Steady', imageUrl: 'https://x.test/s.png' } })).json()
  t.equal((await app.inject(`/logos/${logo._id}`)).statusCode, 200)

  await redisServer.stop()
  await until('the app to notice', async () => (await app.inject('/readyz')).statusCode === 503)

  // Reads: served from L1 (the logo) and the store (what L1 lacks).
  const storeReads = app.cacheStats().store.reads
  for (let i = 0; i < 20; i++) t.equal((await app.inject(`/logos/${logo._id}`)).json().title, 'Steady')
  t.equal(app.cacheStats().store.reads, storeReads, 'the logo itself from L1')
  const list = await app.inject('/logos')
  t.equal(list.statusCode, 200)
  t.same(list.json().items.map((l: { _id: string }) => l._id), [logo._id])

  // Writes: committed, written through L1; the L2 part is remembered.
  const edited = await app.inject({ method: 'PATCH', url: `/logos/${logo._id}`, headers: admin, payload: { title: 'Through the storm' } })
  t.equal(edited.statusCode, 200)
  for (let i = 0; i < 5; i++) {
    const vote = await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(await token(`voter${i}`)) })
    t.equal(vote.statusCode, 200)
  }
  const created = await app.inject({ method: 'POST', url: '/logos', headers: admin, payload: { title: 'Born offline', imageUrl: 'https://x.test/b.png' } })
  t.equal(created.statusCode, 201)
  const fresh = (await app.inject(`/logos/${logo._id}`)).json()
  t.equal(fresh.title, 'Through the storm')
  t.equal(fresh.totalVotes, 5)
  t.equal(fresh.version, 7)
  t.same((await app.inject('/logos')).json().items.map((l: { title: string }) => l.title), ['Through the storm', 'Born offline'])
  t.same((await app.inject(`/logos/${logo._id}/votes`)).json(), { logoId: logo._id, totalVotes: 5, version: 7 })

  const down = app.cacheStats()
  t.equal(down.l2.available, false)
  t.ok(down.l2.skipped + down.l2.errors > 10, 'many L2 calls skipped or failed...')
  t.equal(said(UNAVAILABLE), 1, '...logged once')
  t.ok(down.l2.pendingWrites >= 2, `missed writes remembered (${down.l2.pendingWrites})`)

  await redisServer.start() // empty: no data, no scripts loaded
  await until('L2 to be back and the missed writes replayed', () => app.cacheStats().l2.available && app.cacheStats().l2.pendingWrites === 0)
  t.equal(said(BACK), 1, 'recovery logged once')
  t.equal(said(UNAVAILABLE), 1, 'still one outage line')

  const redis = new Redis(redisServer.url)
  t.teardown(() => redis.quit())
  const l2Logo = JSON.parse((await redis.get(`${prefix}logo:${logo._id}`))!)
  t.equal(l2Logo.v, 7, 'L2 holds the version committed while it was away')
  t.equal(l2Logo.d.title, 'Through the storm')
  t.equal(l2Logo.d.totalVotes, 5)
  t.equal(JSON.parse((await redis.get(`${prefix}logo:${created.json()._id}`))!).v, 1)

  // A replica starting now is served by L2, not the store.
  const second = await build(t, { ...env, LOG_LEVEL: 'silent' })
  t.equal((await second.inject(`/logos/${logo._id}`)).json().title, 'Through the storm')
  t.equal(second.cacheStats().store.logo, 0)
  t.equal(second.cacheStats().l2.hits, 1)

  // And misses fill L2 again.
  await second.inject('/logos')
  await until('the index in L2', async () => (await redis.get(`${prefix}logos:index`)) !== null)
  t.same(JSON.parse((await redis.get(`${prefix}logos:index`))!).d, [logo._id, created.json()._id])
})
