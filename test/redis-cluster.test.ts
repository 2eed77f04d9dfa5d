// Redis Cluster (REDIS_CLUSTER_NODES) on a real three-primary cluster on loopback ports: the bus
// conformance suite over sharded pub/sub, the L2 conformance suite (hash-tagged keys: no
// CROSSSLOT), a scan that reaches every primary, and two server processes where a vote on one
// reaches a subscriber on the other, and presence counts across both.
import { Cluster } from 'ioredis'
import t, { type Test } from 'tap'
import { connectRedisBus } from '../src/bus/redis.js'
import { shardedPublisher, shardedReceiver } from '../src/bus/redis-channels.js'
import type { Bus } from '../src/bus/types.js'
import { scanKeys } from '../src/redis-client.js'
import { busConformance } from './bus.conformance.js'
import { redisPrefix, type TestLike } from './helper.js'
import { l2Conformance } from './l2.conformance.js'
import { redisCluster, until } from './redis-topologies.js'
import { bothReady, castVote, clientsMatchStore, replicaPair, voteFlow } from './replica-pair.js'
import { SyncClient } from './sync-client.js'

const quiet = { info () {}, warn () {}, error () {} }
const cluster = await redisCluster(t)
const startupNodes = cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }))

/** A Cluster client wired the way src/redis-client.ts wires it; closed at teardown. */
async function clusterClient (t: TestLike): Promise<Cluster> {
  const client = new Cluster(startupNodes, { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await until('the cluster client to be ready', () => client.status === 'ready', 10_000)
  return client
}

async function clusterBus (t: TestLike, prefix: string, origin: string): Promise<Bus> {
  const publisher = await clusterClient(t)
  const channel = `${prefix}bus`
  const bus = await connectRedisBus({ publisher, receiver: shardedReceiver(publisher, channel), send: shardedPublisher(publisher, channel), channel, origin, log: quiet })
  t.teardown(() => bus.close())
  return bus
}

t.test('bus conformance over sharded pub/sub', async (t) => {
  busConformance(t, async (t: Test) => {
    const prefix = redisPrefix()
    return { a: await clusterBus(t, prefix, 'replica-a'), b: await clusterBus(t, prefix, 'replica-b') }
  })
})

t.test('L2 conformance on the cluster', async (t) => {
  l2Conformance(t, clusterClient)
})

t.test('the sharded bus subscribes on the primary that owns its channel only', async (t) => {
  const prefix = redisPrefix()
  await clusterBus(t, prefix, 'a')
  await clusterBus(t, prefix, 'b')
  const counts = await Promise.all(cluster.nodes.map(async (n) => ({
    sharded: Number(((await n.call('PUBSUB', 'SHARDNUMSUB', `${prefix}bus`)) as unknown[])[1]),
    classic: Number(((await n.call('PUBSUB', 'NUMSUB', `${prefix}bus`)) as unknown[])[1])
  })))
  t.same(counts.map((c) => c.sharded).sort(), [0, 0, 2], 'both buses SSUBSCRIBEd on one node')
  t.same(counts.map((c) => c.classic), [0, 0, 0], 'no classic SUBSCRIBE, which every node would have to forward')
})

t.test('scanning a namespace reaches every primary', async (t) => {
  const client = await clusterClient(t)
  const prefix = redisPrefix()
  // No hash tag: these keys spread over the slots, so over all three primaries.
  const keys = Array.from({ length: 60 }, (_, i) => `${prefix}spread:${i}`)
  for (const key of keys) await client.set(key, '1', 'PX', 60_000)
  const perNode = await Promise.all(cluster.nodes.map(async (n) => Number(await n.call('DBSIZE'))))
  t.ok(perNode.every((n) => n > 0), `every primary holds some of the keys (${perNode.join(', ')})`)
  const found: string[] = []
  for await (const batch of scanKeys(client, `${prefix}*`)) found.push(...batch.keys)
  t.same(found.sort(), [...keys].sort(), 'the scan found every key, on every primary')
  for (const key of keys) await client.unlink(key)
})

t.test('two replicas on the cluster: a vote on one reaches a subscriber on the other', async (t) => {
  const pair = await replicaPair(t, { REDIS_CLUSTER_NODES: cluster.nodesEnv })
  const [logo] = pair.logos
  const vote = await castVote(pair.a, logo._id, 'alice')
  t.equal(vote.status, 200)
  const onB = pair.clients.find((c) => c.on === 'b')!.client
  await onB.until(() => onB.state.version(`logos.${logo._id}.votes`) === vote.version, 10_000, 'the vote on A reaches B')
  t.equal(onB.state.value(`logos.${logo._id}.votes`), 1, 'with its count')

  const statuses = await voteFlow(pair, 60).done
  t.same([...new Set(statuses)], [200], `${statuses.length} votes and retractions through both replicas answered 200`)
  await clientsMatchStore(pair)
  t.pass('every client holds the stored count and version of every logo')

  const rateLimitKeys: string[] = []
  const client = await clusterClient(t)
  for await (const batch of scanKeys(client, `${pair.prefix}rl:*`)) rateLimitKeys.push(...batch.keys)
  t.ok(rateLimitKeys.length > 0, 'the rate limits live in the cluster')
  await bothReady(pair)
  t.pass('/readyz is ok on both replicas')

  // Presence: the report script runs on the primary that owns its hash tag and publishes the
  // view there (SPUBLISH from Lua), where both replicas' sharded receivers listen.
  const present = [await SyncClient.connect(t, pair.a.ws), await SyncClient.connect(t, pair.b.ws), await SyncClient.connect(t, pair.b.ws)]
  for (const c of present) await c.subscribe('presence.logos')
  for (const c of present) await c.until(() => c.on('presence.logos').at(-1)?.data === 3, 10_000, 'presence 3 on both replicas')
  t.pass('presence.logos counts 3 across the two replicas on the cluster')
  present[2].close()
  await present[0].until(() => present[0].on('presence.logos').at(-1)?.data === 2, 10_000, 'a leave on B reaches A')
  t.pass('a leave on B reaches A through the cluster')
})
