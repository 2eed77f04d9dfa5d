// Two real server processes on one PostgreSQL schema and one Redis deployment (whatever its
// shape), with /sync clients on each, a bounded vote flow through both, and the check that every
// client ends in the stored state. Used by the Sentinel and Cluster tests.
import { createPostgresStore } from '../src/store/postgres.js'
import type { Logo } from '../src/domain.js'
import type { Store } from '../src/store/types.js'
import { PG_URL, bearer, pgSchema, redisPrefix, startServer, token, type ServerProcess, type TestLike } from './helper.js'
import { until } from './redis-topologies.js'
import { SyncClient } from './sync-client.js'

export interface ReplicaPair {
  a: ServerProcess
  b: ServerProcess
  store: Store
  prefix: string
  logos: Logo[]
  /** Clients subscribed to `logos` and every `logos.<id>.votes`: two on A, two on B. */
  clients: { on: 'a' | 'b', client: SyncClient }[]
}

export async function replicaPair (t: TestLike, redisEnv: Record<string, string>, logoCount = 3): Promise<ReplicaPair> {
  const schema = await pgSchema(t)
  const prefix = redisPrefix()
  const env = {
    DATABASE_URL: PG_URL,
    DATABASE_SCHEMA: schema,
    REDIS_KEY_PREFIX: prefix,
    RATE_LIMIT_MAX: '1000000',
    VOTE_RATE_LIMIT: '1000000',
    SYNC_CONFLATE_MS: '20',
    ...redisEnv
  }
  const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])
  const store = await createPostgresStore({ connectionString: PG_URL, schema })
  t.teardown(() => store.close())
  const admin = await token('admin', 'admin')
  const logos: Logo[] = []
  for (let i = 0; i < logoCount; i++) {
    const res = await fetch(`${a.http}/logos`, { method: 'POST', headers: { ...bearer(admin), 'content-type': 'application/json' }, body: JSON.stringify({ title: `L${i}`, imageUrl: `https://img.test/${i}.png` }) })
    if (res.status !== 201) throw new Error(`create logo: ${res.status} ${await res.text()}`)
    logos.push(await res.json() as Logo)
  }
  const clients: ReplicaPair['clients'] = []
  for (const on of ['a', 'a', 'b', 'b'] as const) {
    const client = await SyncClient.connect(t, (on === 'a' ? a : b).ws)
    await client.subscribe('logos')
    for (const logo of logos) await client.subscribe(`logos.${logo._id}.votes`)
    clients.push({ on, client })
  }
  return { a, b, store, prefix, logos, clients }
}

/** POST (or DELETE) a vote; resolves with the status and, on 200, the answer. */
export async function castVote (server: ServerProcess, logoId: string, sub: string, method: 'POST' | 'DELETE' = 'POST'): Promise<{ status: number, version?: number, totalVotes?: number }> {
  const res = await fetch(`${server.http}/logos/${logoId}/votes`, { method, headers: bearer(await token(sub)) })
  const body = await res.json() as { version?: number, totalVotes?: number }
  return { status: res.status, ...(res.status === 200 ? body : {}) }
}

/**
 * Votes through A and B in turn (user i for logo i mod n; every fifth user takes it back),
 * at most `limit` votes or until stop() is called; both resolve with every status seen.
 */
export function voteFlow (pair: ReplicaPair, limit = 600) {
  let stopped = false
  let sent = 0
  const statuses: number[] = []
  const done = (async () => {
    const inFlight = new Set<Promise<void>>()
    for (let i = 0; i < limit; i++) {
      if (stopped) break // set by stop(), from outside this loop
      const server = i % 2 === 0 ? pair.a : pair.b
      const logo = pair.logos[i % pair.logos.length]
      const p = (async () => {
        const cast = await castVote(server, logo._id, `flow${i}`)
        statuses.push(cast.status)
        if (i % 5 === 0) statuses.push((await castVote(i % 2 === 0 ? pair.b : pair.a, logo._id, `flow${i}`, 'DELETE')).status)
        sent++
      })()
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p))
      if (inFlight.size >= 4) await Promise.race(inFlight)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await Promise.all(inFlight)
  })()
  return {
    statuses,
    get sent () { return sent },
    /** Resolves with every status once `limit` votes were sent (or stop() was called). */
    done: done.then(() => statuses),
    async stop () { stopped = true; await done; return statuses }
  }
}

/** Waits (bounded) until every client holds the stored count and version of every logo, in the list and per channel. */
export async function clientsMatchStore (pair: ReplicaPair, timeoutMs = 15_000): Promise<void> {
  const stored = new Map((await pair.store.listLogos()).map((l) => [l._id, l]))
  const mismatches = () => {
    const out: string[] = []
    for (const { on, client } of pair.clients) {
      for (const logo of pair.logos) {
        const want = stored.get(logo._id)!
        const channel = `logos.${logo._id}.votes`
        if (client.state.value(channel) !== want.totalVotes || client.state.version(channel) !== want.version) {
          out.push(`${on}: ${channel} holds ${String(client.state.value(channel))}@${client.state.version(channel)}, stored ${want.totalVotes}@${want.version}`)
        }
        const item = client.state.list.get(logo._id)
        if (item?.totalVotes !== want.totalVotes) out.push(`${on}: logos list holds ${item?.totalVotes} for ${logo._id}, stored ${want.totalVotes}`)
      }
    }
    return out
  }
  try {
    await until('clients to hold the stored state', () => mismatches().length === 0, timeoutMs)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${mismatches().join('\n')}`)
  }
}

/** Waits (bounded) until both replicas' /readyz answer 200 with Redis ok. */
export async function bothReady (pair: ReplicaPair, timeoutMs = 15_000): Promise<void> {
  for (const server of [pair.a, pair.b]) {
    await until(`${server.http}/readyz to be ok`, async () => {
      const res = await fetch(`${server.http}/readyz`)
      const body = await res.json() as { checks: { redis: string } }
      return res.status === 200 && body.checks.redis === 'ok'
    }, timeoutMs)
  }
}
