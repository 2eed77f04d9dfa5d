// Redis behind Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_NAME): a real primary, a replica and
// three sentinels on loopback ports; two server processes; a failover forced while votes flow
// through both. Votes keep working, cross-replica delivery resumes through the new primary,
// clients end in the stored state, and /readyz is back to ok.
import t from 'tap'
import { bothReady, castVote, clientsMatchStore, replicaPair, voteFlow } from './replica-pair.js'
import { sentinelSetup, until } from './redis-topologies.js'

t.test('SENTINEL FAILOVER while votes flow through two replicas', async (t) => {
  const sentinel = await sentinelSetup(t)
  const pair = await replicaPair(t, { REDIS_SENTINELS: sentinel.sentinelsEnv, REDIS_SENTINEL_NAME: sentinel.name })
  const [logo] = pair.logos
  const channel = `${pair.prefix}bus`
  t.equal(await sentinel.primaryPort(), sentinel.primary.port, 'the sentinels name the first primary')
  t.equal(await sentinel.primary.call('PUBSUB', 'NUMSUB', channel).then((r) => Number((r as unknown[])[1])), 2, 'both replicas subscribed on the primary')

  // A vote on A reaches a client on B before the failover.
  const before = await castVote(pair.a, logo._id, 'before')
  t.equal(before.status, 200)
  const onB = pair.clients.find((c) => c.on === 'b')!.client
  await onB.until(() => (onB.state.version(`logos.${logo._id}.votes`) ?? 0) >= before.version!, 10_000, 'a vote on A reaches B')

  const flow = voteFlow(pair)
  await until('votes to flow', () => flow.sent >= 20)
  const newPrimary = await sentinel.failover()
  t.equal(newPrimary.port, sentinel.replica.port, 'the replica was promoted')
  const sentAtSwitch = flow.sent
  await until('votes to flow after the switch', () => flow.sent >= sentAtSwitch + 30, 20_000)
  const statuses = await flow.stop()
  t.same([...new Set(statuses)], [200], `every one of ${statuses.length} votes and retractions answered 200, through the switch`)

  // Both replicas' subscriptions moved to the new primary, and delivery across replicas resumed.
  await until('both bus subscriptions on the new primary', async () => Number(((await newPrimary.call('PUBSUB', 'NUMSUB', channel)) as unknown[])[1]) === 2, 15_000)
  t.pass('both replicas subscribed on the new primary')
  const after = await castVote(pair.a, logo._id, 'after')
  t.equal(after.status, 200)
  await onB.until(() => (onB.state.version(`logos.${logo._id}.votes`) ?? 0) >= after.version!, 10_000, 'a vote on A reaches B after the switch')
  t.pass('a vote on A reaches a client on B after the failover')

  // Writes (the L2 cache's compare-on-version script) go to the new primary.
  await until('the cache entry on the new primary to carry the last version', async () => {
    const raw = await newPrimary.call('GET', `{${pair.prefix}cache}:logo:${logo._id}`) as string | null
    return raw !== null && (JSON.parse(raw) as { v: number }).v >= after.version!
  })
  t.pass('the L2 entry on the new primary carries the last vote')

  await clientsMatchStore(pair)
  t.pass('every client holds the stored count and version of every logo')
  await bothReady(pair)
  t.pass('/readyz is ok on both replicas')
})
