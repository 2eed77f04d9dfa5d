// The chaos run: start the cluster, seed logos, start the traffic, play the seeded schedule,
// then a quiet period and the invariants. Used by scripts/chaos.ts (npm run chaos) and
// test/chaos.test.ts (--quick in CI).
//
// Invariants, after the quiet period (every process running, nothing frozen, traffic stopped):
// - every vote answered 200 is in the store, every retraction answered 200 is not (per (user,
//   logo) pair, the last acknowledged operation is what the store holds);
// - `total_votes` equals the vote rows for every logo;
// - every SDK client's state (`logos`, `users.<sub>.votes`, its `logos.<id>.votes`) equals the store;
// - every replica serves the store's counts (GET /logos straight to it: no stale cache);
// - no process exited that the schedule did not kill, and Redis, PostgreSQL and nginx still answer;
// - no answer other than 200, 429, 502, 503 or 504 to a vote (never a 500, never a 4xx it did not earn).
import { Redis } from 'ioredis'
import { bearer, token, type TestLike } from '../helper.js'
import { startCluster, type Cluster } from './cluster.js'
import { chaosSchedule, type Fault, type FaultKind } from './schedule.js'
import { isUnsure, pairKey, startTraffic, type Traffic } from './traffic.js'

export interface ChaosOptions {
  seed: number
  seconds: number
  quick?: boolean
  /** Progress lines (stderr in the script, comments in tap). */
  log?: (line: string) => void
}

export interface FaultRecord extends Fault {
  /** ms from the fault's end until every replica answered /readyz 200 again. */
  readyAfterMs: number | null
  /** ms from the fault's end until the next vote answered 200 through nginx. */
  firstAckAfterMs: number | null
}

export interface ChaosResult {
  seed: number
  /** How many faults of each kind were played. */
  faults: Partial<Record<FaultKind, number>>
  votesAcked: number
  votesLost: number
  /** Retractions answered 200 whose vote is still in the store. */
  retractionsLost: number
  clientsConverged: number
  clients: number
  violations: string[]
  /** Pairs left unsure by unanswered attempts (re-asserted in the quiet period, then checked). */
  unsurePairs: number
  attempts: number
  unanswered: number
  /** Failed attempts by status ('network': no answer). */
  failures: Record<string, number>
  replicas: number
  seconds: number
  /** Worst recovery per fault kind: readiness and first acknowledged vote after the fault ended (ms). */
  recovery: Partial<Record<FaultKind, { readyMs: number | null, firstAckMs: number | null }>>
  stalledClients: { opened: number, closedBy: Record<string, number>, errors: string[] }
  replay: string
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function until (check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try { if (await check()) return true } catch { /* not yet */ }
    if (Date.now() > deadline) return false
    await sleep(everyMs)
  }
}

/** Plays one fault; returns when the fault is over (the service is free to recover). */
async function play (cluster: Cluster, traffic: Traffic, fault: Fault): Promise<void> {
  switch (fault.kind) {
    case 'redis-restart':
      await cluster.redis.stop()
      await sleep(fault.ms)
      await cluster.redis.start()
      return
    case 'redis-freeze':
      await cluster.redis.freeze()
      await sleep(fault.ms)
      await cluster.redis.thaw()
      return
    case 'replica-freeze':
      cluster.signalReplica(fault.replica!, 'SIGSTOP')
      await sleep(fault.ms)
      cluster.signalReplica(fault.replica!, 'SIGCONT')
      return
    case 'replica-kill':
      cluster.killReplica(fault.replica!)
      await sleep(fault.ms)
      await cluster.restartReplica(fault.replica!)
      return
    case 'postgres-restart':
      await cluster.postgres.stop()
      await sleep(fault.ms)
      await cluster.postgres.start()
      return
    case 'stalled-clients':
      await traffic.addStalled(fault.count!)
  }
}

interface StoreState {
  totals: Map<string, number>
  rows: Map<string, number>
  votesOf: Map<string, Set<string>>
  pairs: Set<string>
}

async function readStore (cluster: Cluster): Promise<StoreState> {
  const logos = await cluster.query<{ id: string, total_votes: number }>('SELECT id, total_votes FROM logos')
  const votes = await cluster.query<{ logo_id: string, user_id: string }>('SELECT logo_id, user_id FROM votes')
  const state: StoreState = { totals: new Map(), rows: new Map(), votesOf: new Map(), pairs: new Set() }
  for (const l of logos) { state.totals.set(l.id, l.total_votes); state.rows.set(l.id, 0) }
  for (const v of votes) {
    state.rows.set(v.logo_id, (state.rows.get(v.logo_id) ?? 0) + 1)
    const mine = state.votesOf.get(v.user_id) ?? new Set<string>()
    mine.add(v.logo_id)
    state.votesOf.set(v.user_id, mine)
    state.pairs.add(pairKey(v.user_id, v.logo_id))
  }
  return state
}

const sameSet = (a: Iterable<string>, b: Iterable<string>) => {
  const x = [...a].sort()
  const y = [...b].sort()
  return x.length === y.length && x.every((v, i) => v === y[i])
}

export async function runChaos (t: TestLike, opts: ChaosOptions): Promise<ChaosResult> {
  const log = opts.log ?? (() => {})
  const replicaCount = opts.quick ? 2 : 3
  const violations: string[] = []
  const schedule = chaosSchedule({ seed: opts.seed, seconds: opts.seconds, replicas: replicaCount })
  log(`seed ${opts.seed}: ${schedule.length} faults over ${opts.seconds} s on ${replicaCount} replicas: ${schedule.map((f) => f.kind + (f.replica !== undefined ? `#${f.replica}` : '')).join(', ')}`)

  const cluster = await startCluster(t, replicaCount, log)
  t.teardown(() => cluster.close())
  log(`cluster up: replicas on ${cluster.replicas.map((r) => r.port).join(', ')}, nginx on ${cluster.nginx.port}`)

  const admin = bearer(await token('chaos-admin', 'admin'))
  const logoIds: string[] = []
  for (let i = 0; i < (opts.quick ? 4 : 6); i++) {
    const res = await fetch(`${cluster.nginx.http}/logos`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ title: `Chaos ${i}`, imageUrl: `https://chaos.test/${i}.png` }) })
    if (res.status !== 201) throw new Error(`could not create a logo: ${res.status} ${await res.text()}`)
    logoIds.push((await res.json() as { _id: string })._id)
  }

  const traffic = await startTraffic({
    seed: opts.seed,
    users: opts.quick ? 8 : 20,
    logoIds,
    nginx: cluster.nginx,
    thinkMs: opts.quick ? [40, 250] : [20, 200]
  })
  t.teardown(async () => { await traffic.stop(5000); traffic.close() })

  // The schedule, in order; each fault waits for its time and for the previous one to end.
  const started = Date.now()
  const records: FaultRecord[] = []
  for (const fault of schedule) {
    const wait = started + fault.at - Date.now()
    if (wait > 0) await sleep(wait)
    const faultStart = Date.now()
    log(`+${((Date.now() - started) / 1000).toFixed(1)} s ${fault.kind}${fault.replica !== undefined ? ` replica ${fault.replica}` : ''}${fault.count ? ` x${fault.count}` : ''} for ${fault.ms} ms`)
    await play(cluster, traffic, fault)
    const ended = Date.now()
    const ready = await until(() => cluster.allReady(), 30_000, 50)
    const readyAfterMs = ready ? Date.now() - ended : null
    const record: FaultRecord = { ...fault, readyAfterMs, firstAckAfterMs: null }
    records.push(record)
    if (!ready) violations.push(`after ${fault.kind} at +${fault.at} ms: not every replica ready within 30 s`)
    void until(() => traffic.stats.ackTimes.some((at) => at > ended), 30_000, 50).then((ok) => {
      if (ok) record.firstAckAfterMs = traffic.stats.ackTimes.find((at) => at > ended)! - ended
      if (process.env.CHAOS_DEBUG) {
        const seen = traffic.stats.failureLog.filter(([at]) => at >= faultStart).map(([at, s]) => `${at - ended}:${s}`)
        log(`  ${fault.kind}: first ack ${record.firstAckAfterMs} ms after; failures (ms after end): ${seen.slice(0, 40).join(' ')}`)
      }
    })
  }
  const remaining = started + opts.seconds * 1000 - Date.now()
  if (remaining > 0) await sleep(remaining)

  // Quiet period: everything running, nothing frozen; let in-flight work land, then stop.
  log('quiet period')
  await until(() => cluster.allReady(), 30_000)
  await sleep(2000)
  await traffic.stop(40_000)
  await sleep(1000)

  // Pairs whose last unanswered attempt could have landed after their last acknowledged
  // operation: say again what was last acknowledged (or retract, if nothing was), until answered.
  const unsure = [...traffic.ledger.entries()].filter(([, p]) => isUnsure(p))
  for (const [key, pair] of unsure) {
    const [sub, logoId] = key.split('\u0000')
    const user = traffic.users.find((u) => u.sub === sub)!
    const cast = pair.acked ?? false
    const ok = await until(async () => { await (cast ? user.client.vote(logoId) : user.client.unvote(logoId)); return true }, 20_000, 200)
    if (!ok) violations.push(`quiet period: re-asserting ${cast ? 'the vote' : 'the retraction'} of ${sub} on ${logoId} never got a 200`)
    pair.acked = cast
    pair.unanswered.clear()
  }

  // Invariants on the store itself.
  const store = await readStore(cluster)
  for (const [id, total] of store.totals) {
    if (total !== store.rows.get(id)) violations.push(`logo ${id}: totalVotes ${total} but ${store.rows.get(id)} vote rows`)
  }
  let votesLost = 0
  let retractionsLost = 0
  for (const [key, pair] of traffic.ledger) {
    if (pair.acked === undefined) continue
    const present = store.pairs.has(key)
    if (pair.acked && !present) { votesLost++; violations.push(`vote answered 200 missing from the store: ${key.replace('\u0000', ' on ')}`) }
    if (!pair.acked && present) { retractionsLost++; violations.push(`retraction answered 200 but the vote is in the store: ${key.replace('\u0000', ' on ')}`) }
  }
  for (const key of store.pairs) {
    if (!traffic.ledger.has(key)) violations.push(`a vote nobody cast is in the store: ${key.replace('\u0000', ' on ')}`)
  }

  // Every replica serves the store's counts (no stale L1/L2 left behind by a fault).
  for (const replica of cluster.replicas) {
    let last = ''
    const ok = await until(async () => {
      const items = (await (await fetch(`${replica.server.http}/logos`)).json() as { items: { _id: string, totalVotes: number }[] }).items
      last = JSON.stringify(items.map((l) => [l._id, l.totalVotes]))
      return items.length === store.totals.size && items.every((l) => store.totals.get(l._id) === l.totalVotes)
    }, 15_000, 200)
    if (!ok) violations.push(`replica ${replica.index} serves counts ${last}, the store holds ${JSON.stringify([...store.totals])}`)
  }

  // Every SDK client converges on the store.
  const converged = (u: Traffic['users'][number]): string | null => {
    const logos = u.client.get<{ _id: string, totalVotes: number }[]>('logos')
    if (!logos) return 'no logos'
    if (logos.length !== store.totals.size || logos.some((l) => store.totals.get(l._id) !== l.totalVotes)) return `logos ${JSON.stringify(logos.map((l) => [l._id, l.totalVotes]))}`
    const mine = u.client.get<string[]>(`users.${u.sub}.votes`)
    if (!mine || !sameSet(mine, store.votesOf.get(u.sub) ?? [])) return `own votes ${JSON.stringify(mine)} vs ${JSON.stringify([...(store.votesOf.get(u.sub) ?? [])])}`
    const count = u.client.get<number>(u.countChannel)
    const id = u.countChannel.split('.')[1]
    if (count !== store.totals.get(id)) return `${u.countChannel} ${count} vs ${store.totals.get(id)}`
    return null
  }
  await until(() => traffic.users.every((u) => converged(u) === null), 30_000, 200)
  let clientsConverged = 0
  for (const u of traffic.users) {
    const why = converged(u)
    if (why === null) clientsConverged++
    else violations.push(`client ${u.sub} (status ${u.client.status}) did not converge: ${why}`)
  }

  // Nothing crashed that the schedule did not kill; the backing services answer.
  violations.push(...cluster.crashes)
  violations.push(...traffic.stats.unexpected.map((u) => `unexpected answer: ${u}`))
  const redis = new Redis(cluster.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try { await redis.connect(); await redis.ping() } catch (err) { violations.push(`Redis does not answer: ${(err as Error).message}`) } finally { redis.disconnect() }
  try { await cluster.query('SELECT 1') } catch (err) { violations.push(`PostgreSQL does not answer: ${(err as Error).message}`) }
  try {
    if ((await fetch(`${cluster.nginx.http}/healthz`)).status !== 200) violations.push('nginx: /healthz not 200')
  } catch (err) { violations.push(`nginx does not answer: ${(err as Error).message}`) }

  await cluster.close() // from here on, replicas stopping are the teardown's doing
  const faults: ChaosResult['faults'] = {}
  const recovery: ChaosResult['recovery'] = {}
  for (const r of records) {
    faults[r.kind] = (faults[r.kind] ?? 0) + 1
    if (r.kind === 'stalled-clients') continue
    const worst = recovery[r.kind] ?? { readyMs: 0, firstAckMs: 0 }
    worst.readyMs = r.readyAfterMs === null || worst.readyMs === null ? null : Math.max(worst.readyMs, r.readyAfterMs)
    worst.firstAckMs = r.firstAckAfterMs === null || worst.firstAckMs === null ? null : Math.max(worst.firstAckMs, r.firstAckAfterMs)
    recovery[r.kind] = worst
  }
  return {
    seed: opts.seed,
    faults,
    votesAcked: traffic.stats.acked,
    votesLost,
    retractionsLost,
    clientsConverged,
    clients: traffic.users.length,
    violations,
    unsurePairs: unsure.length,
    attempts: traffic.stats.attempts,
    unanswered: traffic.stats.unknown,
    failures: traffic.stats.failures,
    replicas: replicaCount,
    seconds: opts.seconds,
    recovery,
    stalledClients: traffic.stalled,
    replay: `npm run chaos -- --seed ${opts.seed} --seconds ${opts.seconds}${opts.quick ? ' --quick' : ''}`
  }
}
