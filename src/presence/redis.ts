// Redis adapter of the PresenceBackend port (scaled mode). One entry per replica, not per
// connection: a hash of member counts and a sorted set of expiry times (Redis's clock, so
// replicas' clocks never matter). A report is one Lua script: drop expired entries, set this
// replica's, and, when anything changed, publish the whole view, which every replica's
// receiver gets in the order the scripts ran. On a Cluster the keys and the channel share one
// hash tag, so the script runs on one primary and publishes there (sharded pub/sub).
import type { ChannelReceiver } from '../bus/redis-channels.js'
import { GOODBYE_TIMEOUT_MS, type RedisClient } from '../redis-client.js'
import { withTimeout } from '../timeout.js'
import type { PresenceBackend, PresenceView } from './types.js'

export interface RedisPresenceOptions {
  /** The shared command connection (fails fast while Redis is away). */
  client: RedisClient
  /** Receives the views channel (see src/bus/redis-channels.ts); started here, closed by close(). */
  receiver: (channel: string) => ChannelReceiver
  /** A Cluster: publish with SPUBLISH (sharded pub/sub), as the receiver listens with SSUBSCRIBE. */
  sharded: boolean
  /** REDIS_KEY_PREFIX. */
  prefix: string
  /** What the presence is of (`logos`): keys and the pub/sub channel are named after it. */
  topic: string
  /** How long an entry lives without a refresh. */
  ttlMs: number
  log: { warn (obj: object, msg: string): void }
  /** How long the first subscription may take before boot fails; default 10 s. */
  connectTimeoutMs?: number
}

// KEYS: expiry zset, members hash, view sequence. ARGV: replica, count, ttl ms, pub/sub channel,
// PUBLISH or SPUBLISH.
// The sequence has no TTL: were it to restart at 1, replicas holding a higher one would ignore
// every view after. The other two expire when no replica refreshes them (a stopped deployment).
const REPORT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local replica, count, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local changed = false
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], dead)
  redis.call('HDEL', KEYS[2], dead)
  changed = true
end
if count > 0 then
  if redis.call('HGET', KEYS[2], replica) ~= ARGV[2] then changed = true end
  redis.call('HSET', KEYS[2], replica, count)
  redis.call('ZADD', KEYS[1], now + ttl, replica)
else
  if redis.call('HDEL', KEYS[2], replica) == 1 then changed = true end
  redis.call('ZREM', KEYS[1], replica)
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local view = cjson.encode({ seq = redis.call('INCR', KEYS[3]), members = redis.call('HGETALL', KEYS[2]) })
if changed then redis.call(ARGV[5], ARGV[4], view) end
return view
`

/** The script's JSON: `members` comes as HGETALL's flat [replica, count, …] list. */
function parseView (json: string): PresenceView {
  const raw = JSON.parse(json) as { seq: number, members: string[] | Record<string, never> }
  const flat = Array.isArray(raw.members) ? raw.members : [] // cjson encodes an empty list as {}
  const members: Record<string, number> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) members[flat[i]] = Number(flat[i + 1])
  return { seq: raw.seq, members }
}

export async function connectRedisPresence (opts: RedisPresenceOptions): Promise<PresenceBackend> {
  const { client, ttlMs, log } = opts
  // One hash tag, so the three keys and the channel share a slot (Redis Cluster runs a script on one node).
  const base = `${opts.prefix}presence:{${opts.topic}}`
  const keys = [`${base}:expiry`, `${base}:members`, `${base}:seq`]
  const channel = `${base}:views`
  const publish = opts.sharded ? 'SPUBLISH' : 'PUBLISH'
  const receiver = opts.receiver(channel)
  const handlers = new Set<(view: PresenceView) => void>()
  const gapHandlers = new Set<() => void>()
  let subscribedOnce = false
  let firstSubscribed!: () => void
  const ready = new Promise<void>((resolve) => { firstSubscribed = resolve })
  let lostLogged = false

  receiver.start({
    message (payload) {
      let view: PresenceView
      try {
        view = parseView(payload)
      } catch (err) {
        log.warn({ err }, 'ignoring a presence view that is not JSON')
        return
      }
      for (const h of handlers) h(view)
    },
    subscribed () {
      lostLogged = false
      if (!subscribedOnce) {
        subscribedOnce = true
        firstSubscribed()
        return
      }
      // Views published while the subscription was down are lost: report again to catch up.
      for (const h of gapHandlers) h()
    },
    lost (err) {
      if (!lostLogged) log.warn({ err }, 'presence subscription lost; resubscribing')
      lostLogged = true
    }
  })
  try {
    await withTimeout(ready, opts.connectTimeoutMs ?? 10_000, `presence subscription to ${channel}`)
  } catch (err) {
    await receiver.close(GOODBYE_TIMEOUT_MS)
    throw err
  }

  return {
    kind: 'redis',
    async report (replicaId, members) {
      const json = await client.eval(REPORT, keys.length, ...keys, replicaId, String(members), String(ttlMs), channel, publish) as string
      return parseView(json)
    },
    watch (handler) {
      handlers.add(handler)
      return () => { handlers.delete(handler) }
    },
    onGap (handler) {
      gapHandlers.add(handler)
      return () => { gapHandlers.delete(handler) }
    },
    async close () {
      handlers.clear()
      gapHandlers.clear()
      await receiver.close(GOODBYE_TIMEOUT_MS)
    }
  }
}
