// A rate-limit store for @fastify/rate-limit whose limits hold across replicas without a Redis
// round trip per request: each replica leases part of a key's budget from Redis and spends it
// locally. A key's budget (`max` per window) lives in Redis as the number of requests leased so
// far in the window; a replica asks for LEASE_SHARE of `max` at a time (at least 1), atomically
// capped at what is left, and answers requests from its lease until it runs out. Requests that
// arrive while a lease is on its way wait for it (one lease in flight per key per replica).
//
// A key's first request on a replica (in a window) does not wait for the lease: it is let through
// at once and paid for from the lease that follows (a vote from a user not seen for a minute, the
// common case, costs no Redis round trip before it is applied).
//
// The precision traded: at most `max` + (replicas) per window over all replicas (each replica's
// first request of a window is let through before Redis says whether budget is left; later ones
// wait for their lease); tokens leased by a replica the client stopped using are not available
// to the others, so a client that moves between replicas may be refused up to
// (replicas − 1) × (lease − 1) requests early (with the default 600 per minute and a lease of 60:
// at most 59 early with two replicas). A key costs one Redis round trip per lease: one per
// LEASE_SHARE of its budget, so about ten per window for a client that uses its whole limit, one
// per window for one that sends a few requests.
// Windows are fixed, as with @fastify/rate-limit's Redis store: they start at the key's first
// lease and end at its expiry, which each replica learns from the lease's answer.
// With Redis away, each replica counts on its own (a limit per replica) until Redis answers again;
// a request is never failed for it.
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { RedisClient } from '../redis-client.js'
import { withTimeout } from '../timeout.js'

/** A lease is this share of a key's limit (at least one request). */
export const LEASE_SHARE = 0.1
/**
 * How long a lease may take. A Redis that holds the connection but does not answer (frozen, a
 * partition with no reset) would otherwise hold every request waiting for a lease, for good: past
 * this the lease counts as failed and requests are counted by this replica alone.
 */
export const LEASE_TIMEOUT_MS = 250

/** KEYS[1]: requests leased in the window. ARGV: wanted, max, window ms. Returns { granted, leased, ttl }. */
const LEASE_LUA = `
local leased = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - leased)
if grant > 0 then leased = redis.call('INCRBY', KEYS[1], grant) else grant = 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  if leased == 0 then redis.call('SET', KEYS[1], 0) end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  ttl = tonumber(ARGV[3])
end
return { grant, leased, ttl }
`

type LeaseCommand = (key: string, wanted: number, max: number, windowMs: number) => Promise<[number, number, number]>
type Callback = (error: Error | null, result?: { current: number, ttl: number }) => void

interface Entry {
  /** When the window ends (this clock). */
  windowEnd: number
  /** Requests this replica may still let through from its lease. */
  lease: number
  /** Requests leased over all replicas, as of this replica's last lease. */
  leased: number
  /** Redis had no budget left: refuse here until the window ends. */
  exhausted: boolean
  /** Refusals counted here (the count reported past `max`). */
  over: number
  /** Redis away: requests counted by this replica alone. */
  alone: number
  /** Requests let through before their lease came (a key's first): paid from the next grant. */
  owed: number
  /** Requests waiting for the lease in flight (null: none in flight). */
  waiting: { callback: Callback, max: number }[] | null
}

export interface SharedLimitOptions {
  redis: RedisClient
  /** Prefix of every key, e.g. `logo-sync:rl:`. */
  prefix: string
  /** Bound on keys remembered locally (the oldest is forgotten first: its lease is given up). */
  maxKeys?: number
  /** A lease failed: Redis could not be reached (the caller logs it once per outage). */
  onError?: (err: unknown) => void
  /** A lease succeeded after a failure. */
  onRecovered?: () => void
}

export interface SharedLimiter {
  /** The store class to hand to @fastify/rate-limit (`store`). */
  Store: FastifyRateLimitStoreCtor
  readonly stats: { leases: number, local: number }
}

export function createSharedLimiter (opts: SharedLimitOptions): SharedLimiter {
  const { redis, prefix } = opts
  const maxKeys = opts.maxKeys ?? 100_000
  const entries = new Map<string, Entry>()
  const stats = { leases: 0, local: 0 }
  let failing = false

  const commands = redis as unknown as { logoSyncLease?: LeaseCommand }
  if (!commands.logoSyncLease) redis.defineCommand('logoSyncLease', { numberOfKeys: 1, lua: LEASE_LUA })
  const leaseCommand: LeaseCommand = (...args) => (redis as unknown as Required<typeof commands>).logoSyncLease(...args)

  function entry (key: string, windowMs: number, now: number): Entry {
    let e = entries.get(key)
    if (e === undefined || (now >= e.windowEnd && e.waiting === null)) {
      e = { windowEnd: now + windowMs, lease: 0, leased: 0, exhausted: false, over: 0, alone: 0, owed: 0, waiting: null }
      entries.delete(key)
      entries.set(key, e)
      if (entries.size > maxKeys) entries.delete(entries.keys().next().value!)
    }
    return e
  }

  const ttlOf = (e: Entry) => Math.max(1, e.windowEnd - Date.now())

  /** Answers from what this replica holds; false when a lease is needed first. */
  function answer (e: Entry, max: number, callback: Callback): boolean {
    if (e.lease > 0) {
      e.lease--
      stats.local++
      callback(null, { current: e.leased - e.lease, ttl: ttlOf(e) })
      return true
    }
    if (e.exhausted) {
      stats.local++
      callback(null, { current: max + ++e.over, ttl: ttlOf(e) })
      return true
    }
    if (redis.status !== 'ready') {
      stats.local++
      callback(null, { current: ++e.alone, ttl: ttlOf(e) })
      return true
    }
    return false
  }

  function lease (key: string, e: Entry, max: number, windowMs: number): void {
    const wanted = Math.max(Math.ceil(max * LEASE_SHARE), e.waiting!.length + e.owed, 1)
    stats.leases++
    // Inside a promise: a command that throws at once (a Cluster slot with no owner) fails like
    // one that rejects. Bounded: an answer that comes later is ignored (the tokens it granted are
    // lost to this window, which only makes the limit stricter).
    withTimeout(Promise.resolve().then(() => leaseCommand(key, wanted, max, windowMs)), LEASE_TIMEOUT_MS, 'rate-limit lease').then(([granted, leased, ttl]) => {
      // What was let through ahead is paid first; what the grant cannot pay was over the limit
      // (at most the one request per replica and window).
      const paid = Math.min(e.owed, granted)
      e.owed = 0
      e.lease += granted - paid
      e.leased = leased
      e.windowEnd = Date.now() + ttl
      if (leased >= max) e.exhausted = true
      if (failing) { failing = false; opts.onRecovered?.() }
      settle(key, e, windowMs)
    }, (err: unknown) => {
      if (!failing) { failing = true; opts.onError?.(err) }
      e.alone += e.owed
      e.owed = 0
      // Counted by this replica alone until Redis answers.
      const queued = e.waiting ?? []
      e.waiting = null
      for (const { callback } of queued) callback(null, { current: ++e.alone, ttl: ttlOf(e) })
    })
  }

  /** Serves the requests that waited for a lease; leases again for those it did not cover. */
  function settle (key: string, e: Entry, windowMs: number): void {
    const queued = e.waiting ?? []
    e.waiting = null
    let i = 0
    while (i < queued.length && answer(e, queued[i].max, queued[i].callback)) i++
    if (i < queued.length) {
      e.waiting = queued.slice(i)
      lease(key, e, queued[i].max, windowMs)
    }
  }

  class SharedStore implements FastifyRateLimitStore {
    /** Key prefix: `prefix`, plus the route for a route's own limiter (see child()). */
    // (@fastify/rate-limit constructs the store with its options: nothing in them is needed here.)
    namespace = prefix

    incr (id: string, callback: Callback, timeWindow: number, max: number): void {
      const key = this.namespace + id
      const e = entry(key, timeWindow, Date.now())
      if (e.waiting !== null) { e.waiting.push({ callback, max }); return }
      if (answer(e, max, callback)) return
      if (e.leased === 0 && e.owed === 0 && e.alone === 0 && !failing) {
        // The key's first request here in this window: through now, paid from the lease below.
        // Not while leases fail (Redis connected but refusing, e.g. OOM): then requests are
        // counted here alone, as when Redis is away.
        e.owed = 1
        e.waiting = []
        stats.local++
        callback(null, { current: 1, ttl: ttlOf(e) })
      } else {
        e.waiting = [{ callback, max }]
      }
      lease(key, e, max, timeWindow)
    }

    // Typed as route options; at run time the plugin passes its merged params, with `routeInfo`.
    child (routeOptions: object): FastifyRateLimitStore {
      const route = (routeOptions as { routeInfo?: { method?: string, url?: string } }).routeInfo ?? {}
      const store = new SharedStore()
      store.namespace = `${this.namespace}${route.method ?? ''}${route.url ?? ''}-`
      return store
    }
  }

  return { Store: SharedStore as unknown as FastifyRateLimitStoreCtor, stats }
}
