// Shared by the real-time scenarios (fanout, vote-to-screen, connections-10k,
// memory-per-connection): the three servers side by side, the frame every one of them sends, the
// publisher that feeds them through Redis, and latency histograms.
//
// Every change reaches every server the same way, as it would from another replica: over Redis.
//   ours       our app in scaled mode (PostgreSQL + Redis bus); the publisher PUBLISHes a bus
//              envelope (`logo.updated`) on `<prefix>bus`, as another replica's write would
//   bare       bench/realtime/bare-ws-server.ts: `ws` with a channel → sockets map; the publisher
//              PUBLISHes `<channel>\n<frame bytes>` and the server sends those bytes as they are
//   socketio   bench/realtime/socketio-server.ts: Socket.IO 4 with @socket.io/redis-adapter; the
//              publisher is a second Socket.IO server on the same adapter doing
//              `io.to(room).emit('frame', frame)`, i.e. a change made on another Socket.IO replica
// The frame is the same JSON on all three (ours builds it itself from the logo), and its logo's
// title carries the publish time (µs of the monotonic clock, shared by every process on the host),
// so each subscriber measures publish-to-delivery itself.
import { randomBytes } from 'node:crypto'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import pg from 'pg'
import { Server as SocketIoServer } from 'socket.io'
import { JWT_SECRET, PG_URL, REDIS_URL, token } from '../../test/basics.js'
import { SERVER_CPU, sleep, startChild, startLoadChild, type ChildOptions, type ChildServer, type LoadChild } from '../lib.js'
import type { Command, OpenResult, Plan, StopResult } from './subscribers.js'

export { JWT_SECRET, PG_URL, REDIS_URL }

export type Target = 'ours' | 'bare' | 'socketio'

/** Microseconds on the monotonic clock (CLOCK_MONOTONIC: the same in every process of the host). */
export const nowUs = (): number => Number(process.hrtime.bigint() / 1000n)

/** Title prefix whose tail is the publish time in µs (subscribers look for it in the raw frame). */
export const STAMP = 'bench '

// The imageUrl is padded so that a `logos.<id>` frame is the size asked for (if it can be that small).
const IMAGE_BASE = 'https://cdn.example.com/logos/'

export interface BenchLogo {
  _id: string
  title: string
  imageUrl: string
  totalVotes: number
  version: number
  createdAt: string
  updatedAt: string
}

/** The logo of a change at version `version`, stamped now. */
export function stampedLogo (id: string, version: number, imageUrl: string): BenchLogo {
  return {
    _id: id,
    title: `${STAMP}${nowUs()}`,
    imageUrl,
    totalVotes: 0,
    version,
    createdAt: '2026-12-01T00:00:00.000Z',
    updatedAt: '2026-12-01T00:00:00.000Z'
  }
}

/** The frame ours sends for a `logo.updated` on `logos.<id>` (subscriptions.ts → makeBroadcast). */
export const frameOf = (channel: string, logo: BenchLogo) => ({ channel, type: 'updated', version: logo.version, data: logo })

/** An imageUrl that makes the `logos.<id>` frame exactly `bytes` long (when it can). */
export function imageUrlFor (id: string, bytes: number): string {
  const probe = JSON.stringify(frameOf(`logos.${id}`, stampedLogo(id, 1000, IMAGE_BASE)))
  const pad = Math.max(0, bytes - probe.length - 4)
  return `${IMAGE_BASE}${'x'.repeat(pad)}.png`
}

// ---------------------------------------------------------------------------------------------
// Servers

export interface Scaled {
  schema: string
  prefix: string
  drop: () => Promise<void>
}

/** A PostgreSQL schema and a Redis key prefix of the scenario's own; drop() removes both. */
export async function scaledSpace (name: string): Promise<Scaled> {
  const tag = randomBytes(4).toString('hex')
  const schema = `bench_${name}_${tag}`
  const prefix = `bench:${name}:${tag}:`
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.end()
  return {
    schema,
    prefix,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await c.end()
      const r = new Redis(REDIS_URL)
      let cursor = '0'
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        if (keys.length > 0) await r.del(...keys)
        cursor = next
      } while (cursor !== '0')
      r.disconnect()
    }
  }
}

/** Env of our app as these scenarios run it: scaled mode, quiet, no limits in the way of the load. */
export function oursEnv (space: Scaled, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    JWT_SECRET,
    DATABASE_URL: PG_URL,
    DATABASE_SCHEMA: space.schema,
    REDIS_URL,
    REDIS_KEY_PREFIX: space.prefix,
    SEED_DEMO_DATA: 'false',
    SYNC_MAX_CONNECTIONS_PER_IP: '1000000',
    RATE_LIMIT_MAX: '100000000',
    VOTE_RATE_LIMIT: '1000000',
    PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0',
    SHUTDOWN_DRAIN_MS: '0',
    SHUTDOWN_SPREAD_MS: '0',
    ...extra
  }
}

export interface TargetServer extends ChildServer {
  target: Target
  /** ws:// URL a subscriber connects to. */
  wsUrl: string
  /** After two forced GCs: the process's memoryUsage(). */
  memory: () => Promise<NodeJS.MemoryUsage>
  /** CPU (µs, user + system) the server has used so far, as it reports it (µs resolution). */
  cpu: () => Promise<number>
}

const ENTRY: Record<Target, string> = {
  ours: 'bench/realtime/app-server.ts',
  bare: 'bench/realtime/bare-ws-server.ts',
  socketio: 'bench/realtime/socketio-server.ts'
}

/** Starts one of the three servers on the server core (`--expose-gc` for the memory figures). */
export async function startTarget (target: Target, env: Record<string, string>, opts: ChildOptions = {}): Promise<TargetServer> {
  const child = await startChild(ENTRY[target], env, target === 'ours' ? '/healthz' : '/_bench/health', {
    cpu: SERVER_CPU,
    ...opts,
    nodeArgs: ['--expose-gc', ...(opts.nodeArgs ?? [])]
  })
  const path = target === 'socketio' ? '/socket.io/?EIO=4&transport=websocket' : '/sync'
  return {
    ...child,
    target,
    wsUrl: child.url.replace('http:', 'ws:') + path,
    memory: async () => {
      const res = await fetch(child.url + '/_bench/memory')
      return await res.json() as NodeJS.MemoryUsage
    },
    cpu: async () => {
      const res = await fetch(child.url + '/_bench/cpu')
      return (await res.json() as { us: number }).us
    }
  }
}

/** An admin token for our app (JWT_SECRET above). */
export const adminToken = () => token('bench-admin', 'admin')

/** Creates logos on our app over REST; returns their ids. */
export async function createLogos (server: ChildServer, count: number, imageUrl = `${IMAGE_BASE}seed.png`): Promise<string[]> {
  const auth = { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' }
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${server.url}/logos`, { method: 'POST', headers: auth, body: JSON.stringify({ title: `Bench ${i}`, imageUrl }) })
    const body = await res.json() as { _id?: string }
    if (res.status !== 201 || body._id === undefined) throw new Error(`POST /logos: ${res.status} ${JSON.stringify(body)}`)
    ids.push(body._id)
  }
  return ids
}

// ---------------------------------------------------------------------------------------------
// Publisher: one change to one channel of one target, the same frame for all three.

export class Publisher {
  private readonly redis: Redis
  private io: SocketIoServer | null = null
  private sioClients: Redis[] = []
  /** Next version per logo (versions only grow: our server drops anything not newer). */
  private readonly versions = new Map<string, number>()

  constructor (private readonly prefix: string, private readonly imageUrl: string) {
    this.redis = new Redis(REDIS_URL)
  }

  /** Joins the Socket.IO adapter (a second Socket.IO server, not listening: another replica). */
  async withSocketIo (): Promise<void> {
    const pub = new Redis(REDIS_URL)
    const sub = pub.duplicate()
    this.sioClients = [pub, sub]
    this.io = new SocketIoServer({ serveClient: false })
    this.io.adapter(createAdapter(pub, sub, { key: `${this.prefix}socket.io` }))
    await sleep(200) // the adapter's SUBSCRIBE
  }

  /** Sets where a logo's versions start (above what the server holds). */
  startAt (logoId: string, version: number): void {
    this.versions.set(logoId, version)
  }

  /** A logo change as `target` receives it: the whole logo on `logos.<id>` (and the list, on ours). */
  async publish (target: Target, logoId: string): Promise<void> {
    const version = (this.versions.get(logoId) ?? 1000) + 1
    this.versions.set(logoId, version)
    const logo = stampedLogo(logoId, version, this.imageUrl)
    if (target === 'ours') {
      const envelope = { event: { kind: 'logo.updated', logo }, origin: 'bench-publisher', publishedAt: Date.now() }
      await this.redis.publish(`${this.prefix}bus`, JSON.stringify(envelope))
    } else if (target === 'bare') {
      await this.publishBare(`logos.${logoId}`, logo)
    } else {
      if (this.io === null) throw new Error('Publisher: call withSocketIo() first')
      const channel = `logos.${logoId}`
      this.io.to(channel).emit('frame', frameOf(channel, logo))
    }
  }

  /** The bare server's wire: `<channel>\n<frame bytes>`, sent on as is. */
  async publishBare (channel: string, logo: BenchLogo): Promise<void> {
    await this.redis.publish(`${this.prefix}bare`, `${channel}\n${JSON.stringify(frameOf(channel, logo))}`)
  }

  /** The bare server's share of a change ours fans out to the list and the logo's channel. */
  async publishBareListAndLogo (logoId: string): Promise<void> {
    const version = (this.versions.get(logoId) ?? 1000) + 1
    this.versions.set(logoId, version)
    const logo = stampedLogo(logoId, version, this.imageUrl)
    // Two frames, as ours sends: one on the logo's channel, one on the list (same logo).
    await this.publishBare(`logos.${logoId}`, logo)
    await this.redis.publish(`${this.prefix}bare`, `logos\n${JSON.stringify({ channel: 'logos', type: 'updated', version, data: logo })}`)
  }

  async close (): Promise<void> {
    // Not attached to an HTTP server: io.close() would fail on the missing engine.
    await this.io?.of('/').adapter.close()
    this.redis.disconnect()
    for (const c of this.sioClients) c.disconnect()
  }
}

/**
 * Publishes `count` changes at `ratePerS`, on schedule (a late tick catches up rather than
 * stretching the run); returns the wall time it took (ms).
 */
export async function atRate (ratePerS: number, count: number, op: (i: number) => Promise<void>): Promise<number> {
  const t0 = performance.now()
  const pending: Promise<void>[] = []
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / ratePerS
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    pending.push(op(i))
  }
  await Promise.all(pending)
  return performance.now() - t0
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: 10 µs buckets up to 5 s, then one overflow bucket. Mergeable across shards.

export const BUCKET_US = 10
export const BUCKETS = 500_000

export type SparseHistogram = Array<[bucket: number, count: number]>

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS + 1)
  n = 0
  record (us: number): void {
    const b = us <= 0 ? 0 : Math.min(BUCKETS, Math.floor(us / BUCKET_US))
    this.counts[b]++
    this.n++
  }

  sparse (): SparseHistogram {
    const out: SparseHistogram = []
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i] > 0) out.push([i, this.counts[i]])
    return out
  }

  reset (): void {
    this.counts.fill(0)
    this.n = 0
  }
}

/** Merges sparse histograms; q(p) gives the p-quantile in ms (bucket upper edge), NaN if empty. */
export function mergeHistograms (parts: SparseHistogram[]): { n: number, q: (p: number) => number } {
  const counts = new Map<number, number>()
  let n = 0
  for (const part of parts) {
    for (const [b, c] of part) { counts.set(b, (counts.get(b) ?? 0) + c); n += c }
  }
  const sorted = [...counts.entries()].sort((a, b) => a[0] - b[0])
  return {
    n,
    q: (p: number) => {
      if (n === 0) return NaN
      const rank = Math.max(1, Math.ceil(p * n))
      let seen = 0
      for (const [b, c] of sorted) {
        seen += c
        if (seen >= rank) return ((b + 1) * BUCKET_US) / 1000
      }
      return ((BUCKETS + 1) * BUCKET_US) / 1000
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Subscriber shards: load children (bench/realtime/subscribers.ts) on the load core.

export class Shards {
  /** Connections per shard, per group. */
  private readonly counts = new Map<string, number[]>()

  private constructor (private readonly children: LoadChild[]) {}

  static async start (n: number): Promise<Shards> {
    const children = await Promise.all(Array.from({ length: n }, () => startLoadChild('bench/realtime/subscribers.ts')))
    return new Shards(children)
  }

  get size (): number { return this.children.length }

  /** Opens `count` connections spread over the shards; user ids from `offset` on (mix plans). */
  async open (group: string, target: Target, url: string, count: number, plan: Plan, offset = 0): Promise<OpenResult> {
    const per = this.children.map((_, i) => Math.floor(count / this.children.length) + (i < count % this.children.length ? 1 : 0))
    let from = offset
    const results = await Promise.all(this.children.map((child, i) => {
      const input: Command = { cmd: 'open', group, target, url, count: per[i], offset: from, plan }
      from += per[i]
      return child.run<Command, OpenResult>(input)
    }))
    const had = this.counts.get(group) ?? this.children.map(() => 0)
    this.counts.set(group, had.map((c, i) => c + results[i].output.opened))
    const out = results.map((r) => r.output)
    return {
      opened: out.reduce((s, r) => s + r.opened, 0),
      failed: out.reduce((s, r) => s + r.failed, 0),
      errors: out.flatMap((r) => r.errors),
      subscriptions: out.reduce((s, r) => s + r.subscriptions, 0)
    }
  }

  async begin (): Promise<void> {
    await Promise.all(this.children.map((c) => c.run({ cmd: 'start' })))
  }

  /**
   * Ends a measured run: each shard waits until its connections of `group` have `framesPerConn`
   * change frames each (or `waitMs`), then reports. `share`: the load core's share the shards used.
   */
  async end (group: string | null, framesPerConn: number, waitMs: number): Promise<{ frames: number, stamped: number, hist: ReturnType<typeof mergeHistograms>, errorFrames: number, share: number, open: number }> {
    const counts = group === null ? null : this.counts.get(group)
    const results = await Promise.all(this.children.map((c, i) => c.run<Command, StopResult>({ cmd: 'stop', ...(counts ? { expect: counts[i] * framesPerConn } : {}), waitMs })))
    const out = results.map((r) => r.output)
    const wall = Math.max(...out.map((o) => o.wallMs))
    return {
      frames: out.reduce((s, o) => s + o.frames, 0),
      stamped: out.reduce((s, o) => s + o.stamped, 0),
      hist: mergeHistograms(out.map((o) => o.hist)),
      errorFrames: out.reduce((s, o) => s + o.errorFrames, 0),
      // Every shard is on the one load core: their CPU adds up against it.
      share: out.reduce((s, o) => s + o.cpuUs, 0) / (wall * 1000),
      open: out.reduce((s, o) => s + o.open, 0)
    }
  }

  async close (group?: string): Promise<void> {
    await Promise.all(this.children.map((c) => c.run(group === undefined ? { cmd: 'close' } : { cmd: 'close', group })))
    if (group === undefined) this.counts.clear()
    else this.counts.delete(group)
  }

  async stop (): Promise<void> {
    await Promise.all(this.children.map((c) => c.stop()))
  }
}

/**
 * Runs every cleanup step even when one fails (a failed step must not leave servers running), then
 * throws the first failure.
 */
export async function cleanUp (steps: Array<() => Promise<unknown> | unknown>): Promise<void> {
  const failures: unknown[] = []
  for (const step of steps) {
    try { await step() } catch (err) { failures.push(err) }
  }
  if (failures.length > 0) throw failures[0]
}
