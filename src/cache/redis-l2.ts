// L2 on Redis: JSON entries `{ v, d }` with a TTL under `<REDIS_KEY_PREFIX>cache:`, written only
// through small Lua scripts that compare versions atomically, so replicas racing to write one
// key can never leave an older value behind.
//
// Redis being away is not an error for callers: reads answer `undefined` (the core falls back
// to the store), writes are remembered and replayed (still compare-on-version) when Redis is
// back. The outage is logged once, and its end once.
import { createHash } from 'node:crypto'
import { isCluster, scanKeys, type RedisClient } from '../redis-client.js'
import { withTimeout } from '../timeout.js'
import type { CacheCounters, CacheLogger, Change, L2, L2Entry } from './types.js'

/**
 * KEYS[1] entry. ARGV: op ('set' | 'patch' | 'evict'), version, ttl ms (0: none), floor ttl ms,
 * payload (set: the entry JSON; patch: the fields JSON), base version (patch).
 * Returns 1 when the entry changed, 0 when the stored one was as new or newer.
 */
export const APPLY_LUA = `
local op = ARGV[1]
local v = tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
local cur = nil
if raw then
  local ok, decoded = pcall(cjson.decode, raw)
  if ok and type(decoded) == 'table' and type(decoded.v) == 'number' then cur = decoded end
end
local function put (json, ttl)
  if tonumber(ttl) > 0 then redis.call('SET', KEYS[1], json, 'PX', ttl) else redis.call('SET', KEYS[1], json) end
  return 1
end
if op == 'set' then
  if cur == nil or v > cur.v or (cur.d == nil and v >= cur.v) then return put(ARGV[5], ARGV[3]) end
  return 0
end
if cur ~= nil and cur.v >= v then return 0 end
if op == 'patch' and cur ~= nil and type(cur.d) == 'table' and cur.v == tonumber(ARGV[6]) then
  for k, x in pairs(cjson.decode(ARGV[5])) do cur.d[k] = x end
  cur.v = v
  return put(cjson.encode(cur), ARGV[3])
end
return put(cjson.encode({ v = v }), ARGV[4])
`

/** KEYS[1] entry, KEYS[2] its generation counter; ARGV: generation read before the store read, JSON, ttl. */
export const SET_IF_GENERATION_LUA = `
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`

/** KEYS[1] entry, KEYS[2] its generation counter: a new generation, and the entry is gone. */
export const BUMP_GENERATION_LUA = `
redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
return 1
`

interface Script { lua: string, sha: string }

const script = (lua: string): Script => ({ lua, sha: createHash('sha1').update(lua).digest('hex') })
const scripts = {
  apply: script(APPLY_LUA),
  setIfGeneration: script(SET_IF_GENERATION_LUA),
  bumpGeneration: script(BUMP_GENERATION_LUA)
}

export interface RedisL2Options {
  /** A single node, a Sentinel-managed primary, or a Cluster. */
  redis: RedisClient
  /**
   * Prepended to every key. On a Cluster it must carry a hash tag, e.g. `{logo-sync:cache}:`:
   * the Lua scripts take an entry with its generation key and MGET reads many entries, and
   * keys used together must live in one slot (else CROSSSLOT).
   */
  prefix: string
  ttlMs: number
  floorTtlMs: number
  /** A command slower than this counts as a failure (the read falls back to the store). */
  timeoutMs: number
  counters: CacheCounters
  log: CacheLogger
  /** Failed writes remembered for replay; past this, the whole namespace is dropped on recovery. */
  maxPending?: number
}

export function createRedisL2 (opts: RedisL2Options): L2 {
  const { redis, prefix, counters, log } = opts
  const maxPending = opts.maxPending ?? 10_000
  const k = (key: string) => prefix + key
  const genKey = (key: string) => `${prefix}${key}:gen`

  let degraded = false
  let replaying = false
  let overflowed = false
  const pending = new Map<string, Change>()
  const pendingBumps = new Set<string>()

  function failed (err: unknown, skipped: boolean): undefined {
    if (skipped) counters.l2.skipped++
    else counters.l2.errors++
    if (!degraded) {
      degraded = true
      log.warn({ err, redisStatus: redis.status }, 'cache L2 (Redis) unavailable: serving from L1 and the store until it returns')
    }
    return undefined
  }

  function succeeded (): void {
    if (!degraded) return
    degraded = false
    log.info({ pendingWrites: pending.size + pendingBumps.size, overflowed }, 'cache L2 (Redis) reachable again; replaying writes it missed')
    void replay()
  }

  async function run<T> (op: () => Promise<T>): Promise<T | undefined> {
    // No offline queue: while disconnected ioredis would reject anyway; skip without a round trip.
    if (redis.status !== 'ready') return failed(new Error(`redis is ${redis.status}`), true)
    try {
      const result = await withTimeout(op(), opts.timeoutMs, 'L2 command')
      succeeded()
      return result
    } catch (err) {
      return failed(err, false)
    }
  }

  async function evalScript (script: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(script.sha, keys.length, ...keys, ...args)
    } catch (err) {
      // Redis restarted (or flushed its scripts): send the source once, it is cached again.
      if (!String((err as Error).message).includes('NOSCRIPT')) throw err
      return await redis.eval(script.lua, keys.length, ...keys, ...args)
    }
  }

  function parse (raw: string | null): L2Entry | null {
    if (raw === null) return null
    try {
      const entry = JSON.parse(raw) as L2Entry
      return typeof entry?.v === 'number' ? entry : null
    } catch {
      return null
    }
  }

  function applyArgs (change: Change): (string | number)[] {
    switch (change.op) {
      case 'set': return ['set', change.version, opts.ttlMs, opts.floorTtlMs, JSON.stringify({ v: change.version, d: change.value }), 0]
      case 'patch': return ['patch', change.version, opts.ttlMs, opts.floorTtlMs, JSON.stringify(change.fields), change.base]
      case 'evict': return ['evict', change.version, opts.ttlMs, opts.floorTtlMs, '', 0]
    }
  }

  /** Keeps the newest missed change per key; a patch on a remembered set is folded into it. */
  function remember (key: string, change: Change): void {
    const prev = pending.get(key)
    if (prev !== undefined && prev.version >= change.version) return
    if (prev === undefined && pending.size >= maxPending) { overflowed = true; return }
    if (prev?.op === 'set' && change.op === 'patch' && change.base === prev.version) {
      change = { op: 'set', version: change.version, value: { ...(prev.value as object), ...change.fields } }
    }
    pending.set(key, change)
  }

  async function write (key: string, change: Change): Promise<void> {
    const result = await run(() => evalScript(scripts.apply, [k(key)], applyArgs(change)))
    if (result === undefined) remember(key, change)
    else if (result === 1) counters.l2.writes++
    else counters.l2.rejected++
  }

  async function bumpGeneration (key: string): Promise<void> {
    const result = await run(() => evalScript(scripts.bumpGeneration, [k(key), genKey(key)], []))
    if (result === undefined) pendingBumps.add(key)
  }

  /**
   * Drops every cache key of ours (too many writes were missed to replay them one by one), on
   * every primary of a Cluster. There, keys are unlinked one by one: a batch of keys from
   * different slots would be CROSSSLOT, whatever the prefix's hash tag was when they were written.
   */
  async function dropNamespace (): Promise<void> {
    const cluster = isCluster(redis)
    for await (const { node, keys } of scanKeys(redis, `${prefix}*`)) {
      if (cluster) await node.pipeline(keys.map((key) => ['unlink', key])).exec()
      else await node.unlink(...keys)
    }
  }

  /** Callers of settled() waiting for the replay to end. */
  const settledWaiters = new Set<() => void>()

  async function replay (): Promise<void> {
    if (replaying) return
    replaying = true
    try {
      if (overflowed) {
        overflowed = false
        pending.clear()
        pendingBumps.clear()
        const done = await run(dropNamespace)
        if (done === undefined) overflowed = true
        return
      }
      for (const key of [...pendingBumps]) {
        pendingBumps.delete(key)
        await bumpGeneration(key)
      }
      for (const [key, change] of [...pending]) {
        pending.delete(key)
        await write(key, change)
      }
    } finally {
      replaying = false
      for (const resolve of settledWaiters) resolve()
      settledWaiters.clear()
    }
  }

  // Recovery is noticed on the next command, or as soon as the client reconnects.
  const onReady = () => { if (degraded) succeeded() }
  redis.on('ready', onReady)

  return {
    get available () { return !degraded && redis.status === 'ready' },
    get pendingWrites () { return pending.size + pendingBumps.size + (overflowed ? 1 : 0) },

    /** Resolves once no missed write is waiting to be replayed (now, or when the replay ends). */
    settled (): Promise<void> {
      if (!replaying && pending.size === 0 && pendingBumps.size === 0 && !overflowed) return Promise.resolve()
      return new Promise((resolve) => { settledWaiters.add(resolve) })
    },

    async get (key) {
      const raw = await run(() => redis.get(k(key)))
      return raw === undefined ? undefined : parse(raw)
    },
    async mget (keys) {
      if (keys.length === 0) return []
      const raws = await run(() => redis.mget(...keys.map(k)))
      return raws === undefined ? undefined : raws.map(parse)
    },
    write,
    async writeMany (entries) {
      await Promise.all(entries.map(({ key, change }) => write(key, change)))
    },
    async readGeneration (key) {
      const raw = await run(() => redis.get(genKey(key)))
      return raw === undefined ? undefined : (raw ?? '0')
    },
    async setIfGeneration (key, generation, value, ttlMs) {
      const result = await run(() => evalScript(scripts.setIfGeneration, [k(key), genKey(key)], [generation, JSON.stringify({ v: Number(generation), d: value }), ttlMs]))
      if (result === 1) counters.l2.writes++
      else if (result === 0) counters.l2.rejected++
    },
    bumpGeneration,
    async inspect (key) {
      if (redis.status !== 'ready') return undefined
      return await redis.get(k(key))
    },
    close () { redis.off('ready', onReady) }
  }
}
