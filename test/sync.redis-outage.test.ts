// Kill the Redis two replicas use while votes flow, start it again: every connected client
// ends at the stored counts without reconnecting (the replicas resync their subscribers).
import t from 'tap'
import { createPostgresStore } from '../src/store/postgres.js'
import { PG_URL, pgSchema, privateRedis, redisPrefix, startServer, token } from './helper.js'
import { SyncClient } from './sync-client.js'

t.test('clients end at the stored counts across a Redis outage, on the same connections', async (t) => {
  const redis = await privateRedis(t)
  const schema = await pgSchema(t)
  const env = {
    DATABASE_URL: PG_URL,
    DATABASE_SCHEMA: schema,
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: redisPrefix(),
    SYNC_CONFLATE_MS: '50',
    RATE_LIMIT_MAX: '1000000',
    VOTE_RATE_LIMIT: '1000000',
    LOG_LEVEL: 'error'
  }
  const replicas = await Promise.all([startServer(t, env), startServer(t, env)])
  const store = await createPostgresStore({ connectionString: PG_URL, schema })
  t.teardown(() => store.close())

  const admin = await token('admin', 'admin')
  const logos: string[] = []
  for (const title of ['Outage one', 'Outage two']) {
    const res = await fetch(`${replicas[0].http}/logos`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ title, imageUrl: 'https://img.test/o.png' }) })
    logos.push((await res.json() as { _id: string })._id)
  }

  // Two clients on each replica, on every kind of channel the votes move.
  const clients: { name: string, client: SyncClient }[] = []
  for (const [i, replica] of replicas.entries()) {
    for (const k of [0, 1]) {
      const client = await SyncClient.connect(t, replica.ws, { token: await token(`watcher${i}${k}`) })
      await client.subscribe('logos')
      for (const id of logos) {
        await client.subscribe(`logos.${id}`)
        await client.subscribe(`logos.${id}.votes`)
      }
      await client.subscribe(`users.watcher${i}${k}.votes`)
      clients.push({ name: `replica ${i} client ${k}`, client })
    }
  }

  // Votes flow through both replicas; Redis dies a third of the way in and the flow ends while it
  // is still down, so only the replicas' resync can bring their clients to the stored state.
  // The watchers vote during the outage too, so their private channels move unseen.
  const voters = Array.from({ length: 400 }, (_, i) => i >= 396 ? `watcher${(i - 396) >> 1}${(i - 396) & 1}` : `outage-voter-${i}`)
  const tokens = await Promise.all(voters.map((v) => token(v)))
  const statuses = new Map<number, number>()
  let sent = 0
  const flow = Promise.all(Array.from({ length: 6 }, async () => {
    while (sent < voters.length) {
      const i = sent++
      const res = await fetch(`${replicas[i % 2].http}/logos/${logos[i % 2]}/votes`, { method: 'POST', headers: { authorization: `Bearer ${tokens[i]}` } }).catch(() => null)
      if (res) await res.arrayBuffer()
      statuses.set(res?.status ?? 0, (statuses.get(res?.status ?? 0) ?? 0) + 1)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }))
  while (sent < voters.length / 3) await new Promise((resolve) => setTimeout(resolve, 10))
  await redis.stop()
  const killedAt = sent
  await flow
  const heard = clients.map(({ client }) => client.state.value(`logos.${logos[0]}.votes`))
  await redis.start()
  t.comment(`Redis killed after ${killedAt} votes; ${voters.length - killedAt} more while it was down; statuses ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.ok(voters.length - killedAt > 100, 'votes kept flowing while Redis was down')

  const stored = await Promise.all(logos.map(async (id) => (await store.getLogo(id))!))
  t.equal(stored[0].totalVotes + stored[1].totalVotes, statuses.get(200), 'every vote answered 200 was stored')
  t.ok(heard.every((n) => n !== stored[0].totalVotes), `before Redis returned no client had the final count (${heard.join(', ')} of ${stored[0].totalVotes})`)
  for (const { name, client } of clients) {
    await client.until(() => stored.every((logo) =>
      client.state.value(`logos.${logo._id}.votes`) === logo.totalVotes &&
      (client.state.value(`logos.${logo._id}`) as { version?: number } | undefined)?.version === logo.version &&
      client.state.list.get(logo._id)?.version === logo.version), 15_000, `${name} at the stored counts`)
    for (const logo of stored) {
      t.equal(client.state.value(`logos.${logo._id}.votes`), logo.totalVotes, `${name}: ${logo.title} count`)
      t.same(client.state.value(`logos.${logo._id}`), logo, `${name}: ${logo.title} logo`)
      t.same(client.state.list.get(logo._id), logo, `${name}: ${logo.title} in the list`)
    }
    const sub = name.replace(/replica (\d) client (\d)/, 'watcher$1$2')
    const own = await store.userVotes(sub)
    t.equal(own.length, 1, `${sub} voted during the outage`)
    await client.until(() => JSON.stringify(client.state.value(`users.${sub}.votes`)) === JSON.stringify(own), 15_000, `${name} private votes`)
    t.same(client.state.value(`users.${sub}.votes`), own, `${name}: its own votes, cast while Redis was down`)
    t.ok(client.isOpen, `${name}: still on its first connection`)
    t.equal(client.frames.filter((f) => f.type === 'welcome').length, 1, `${name}: one welcome, no reconnect`)
  }
})
