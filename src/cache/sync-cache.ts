// The cache core: L1 (bounded LRU with TTL, in this process) → L2 (optional, e.g. Redis) → a
// resolver that reads the store. It knows keys, versions and changes, nothing about logos.
//
// Three rules keep it from ever going backwards:
// 1. A value replaces another only when its version is newer (compare-on-version, both levels).
// 2. A change that cannot be applied exactly (a patch on an unknown base, an eviction) leaves a
//    *floor*: a versionless marker that turns reads into misses and refuses anything older.
// 3. A change that arrives while a load for the key is in flight *supersedes* the flight: later
//    readers start a new load instead of joining one that began before the change, and the old
//    flight's result is only kept if it is at least as new as the change.
import { LRUCache } from 'lru-cache'
import { deepFreeze, createCounters, type CacheCounters, type CacheStrategy, type Change, type L2, type Versioned } from './types.js'

interface L1Entry {
  version: number
  /** undefined: a floor (see above). */
  value: unknown
  /** When a stale-while-revalidate entry stops being fresh (ms on the cache clock). */
  fresh: number
  size: number
}

interface Flight {
  promise: Promise<unknown>
  /** Results older than this are handed to the flight's waiters but never stored. */
  floor: number
}

export interface SyncCacheOptions {
  strategy: CacheStrategy
  /** Freshness of an entry; 0 = no expiry. */
  ttlMs: number
  /** stale-while-revalidate only: how long past ttlMs an entry may still be served while it refreshes. */
  staleMs: number
  maxEntries: number
  /** Bound on the approximate bytes held (JSON length of each value, plus its key). */
  maxBytes: number
  /** Reads a key from the store; null when it does not exist. */
  resolve: (key: string) => Promise<Versioned | null>
  l2?: L2 | null
  counters?: CacheCounters
  /** Clock in ms (tests pass a fake one); performance.now by default. */
  now?: () => number
  /** A background refresh failed; the stale value keeps being served until it hard-expires. */
  onRefreshError?: (err: unknown, key: string) => void
}

/** Floors must outlive any load that could still be in flight, even with a tiny TTL. */
const MIN_FLOOR_TTL_MS = 60_000
const FLOOR_SIZE = 32

const sizeOf = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '')

export class SyncCache {
  readonly counters: CacheCounters
  readonly strategy: CacheStrategy
  readonly #l1: LRUCache<string, L1Entry>
  readonly #flights = new Map<string, Flight>()
  readonly #resolve: (key: string) => Promise<Versioned | null>
  readonly #l2: L2 | null
  readonly #now: () => number
  readonly #ttl: number
  readonly #hardTtl: number
  readonly #floorTtl: number
  readonly #swr: boolean
  readonly #onRefreshError?: (err: unknown, key: string) => void
  /** Bumped by clearLocal(): bulk loads started before it must not fill anything. */
  #generation = 0

  constructor (opts: SyncCacheOptions) {
    this.strategy = opts.strategy
    this.counters = opts.counters ?? createCounters()
    this.#resolve = opts.resolve
    this.#l2 = opts.l2 ?? null
    this.#now = opts.now ?? (() => performance.now())
    this.#onRefreshError = opts.onRefreshError
    this.#ttl = opts.ttlMs
    this.#swr = opts.strategy === 'stale-while-revalidate' && opts.ttlMs > 0
    this.#hardTtl = opts.ttlMs > 0 ? opts.ttlMs + (this.#swr ? opts.staleMs : 0) : 0
    this.#floorTtl = this.#hardTtl > 0 ? Math.max(this.#hardTtl, MIN_FLOOR_TTL_MS) : 0
    this.#l1 = new LRUCache<string, L1Entry>({
      max: opts.maxEntries,
      maxSize: opts.maxBytes,
      sizeCalculation: (entry, key) => entry.size + key.length,
      ...(opts.now ? { perf: { now: opts.now }, ttlResolution: 0 } : {})
    })
  }

  /** stale-while-revalidate is on (and meaningful: a TTL is set). */
  get revalidates (): boolean { return this.#swr }
  get generation (): number { return this.#generation }
  get entries (): number { return this.#l1.size }
  get bytes (): number { return this.#l1.calculatedSize }
  /** The cache clock, for callers that keep entries of their own on the same timeline. */
  now (): number { return this.#now() }
  /** When an entry filled now stops being fresh, and when it must no longer be served at all. */
  lifetime (): { fresh: number, hard: number } {
    const now = this.#now()
    return {
      fresh: this.#ttl > 0 ? now + this.#ttl : Infinity,
      hard: this.#hardTtl > 0 ? now + this.#hardTtl : Infinity
    }
  }

  /** L1, then (single-flight) L2, then the store. null when the key does not exist. */
  get<T> (key: string): Promise<T | null> {
    const entry = this.#l1.get(key)
    if (entry !== undefined && entry.value !== undefined) {
      this.#hit(key, entry)
      return Promise.resolve(entry.value as T)
    }
    this.counters.l1.misses++
    return this.#load(key, entry?.version ?? 0, false) as Promise<T | null>
  }

  /** Many keys at once: L1, then one L2 round trip for the misses, then per-key loads. */
  async getMany<T> (keys: string[]): Promise<(T | null)[]> {
    const out: unknown[] = new Array(keys.length)
    let missing: number[] | undefined
    for (let i = 0; i < keys.length; i++) {
      const entry = this.#l1.get(keys[i])
      if (entry !== undefined && entry.value !== undefined) {
        this.#hit(keys[i], entry)
        out[i] = entry.value
      } else {
        this.counters.l1.misses++
        ;(missing ??= []).push(i)
      }
    }
    if (!missing) return out as T[]
    let rest = missing
    if (this.#l2) {
      const found = await this.#l2.mget(missing.map((i) => keys[i]))
      if (found) {
        rest = []
        missing.forEach((i, j) => {
          const key = keys[i]
          const held = this.#l1.peek(key)
          if (held !== undefined && held.value !== undefined) { out[i] = held.value; return }
          const entry = found[j]
          if (entry && entry.d !== undefined && entry.v >= (held?.version ?? 0)) {
            this.counters.l2.hits++
            out[i] = this.#fill(key, entry.v, entry.d, 0)
          } else {
            this.counters.l2.misses++
            rest.push(i)
          }
        })
      }
    }
    await Promise.all(rest.map(async (i) => {
      out[i] = await this.#load(keys[i], this.#l1.peek(keys[i])?.version ?? 0, true)
    }))
    return out as (T | null)[]
  }

  /**
   * Applies a committed change to L1 only (bus events from any replica, this one included).
   * Returns whether L1 changed.
   */
  apply (key: string, change: Change): boolean {
    const flight = this.#flights.get(key)
    if (flight) {
      flight.floor = Math.max(flight.floor, change.version)
      this.#flights.delete(key)
      this.counters.flights.superseded++
    }
    const held = this.#l1.peek(key)
    let next: L1Entry | undefined
    if (change.op === 'set') {
      if (held === undefined || change.version > held.version || (change.version === held.version && held.value === undefined)) {
        const value = deepFreeze(change.value)
        next = { version: change.version, value, fresh: this.lifetime().fresh, size: sizeOf(value) }
      }
    } else if (held === undefined || change.version > held.version) {
      if (change.op === 'patch' && held !== undefined && held.value !== undefined && held.version === change.base) {
        const value = deepFreeze({ ...(held.value as object), ...change.fields })
        next = { version: change.version, value, fresh: this.lifetime().fresh, size: held.size }
      } else {
        next = { version: change.version, value: undefined, fresh: 0, size: FLOOR_SIZE }
      }
    }
    if (next === undefined) {
      this.counters.events.ignored++
      return false
    }
    this.#l1.set(key, next, { ttl: next.value === undefined ? this.#floorTtl : this.#hardTtl })
    this.counters.events.applied++
    return true
  }

  /** Write-through after a store commit: L1, then L2 (compare-on-version there too). */
  async write (key: string, change: Change): Promise<void> {
    this.apply(key, change)
    if (this.#l2) await this.#l2.write(key, change)
  }

  /**
   * Fills L1 (and L2 when asked) from a bulk store read such as the whole list, unless the
   * cache was cleared since the read began (`generation` as it was then). Per key, an entry
   * already as new or newer wins.
   */
  async fillMany (entries: { key: string, loaded: Versioned }[], generation: number, toL2: boolean): Promise<void> {
    if (generation !== this.#generation) return
    for (const { key, loaded } of entries) this.#fill(key, loaded.version, loaded.value, this.#flights.get(key)?.floor ?? 0)
    if (toL2 && this.#l2) {
      await this.#l2.writeMany(entries.map(({ key, loaded }) => ({ key, change: { op: 'set' as const, version: loaded.version, value: loaded.value } })))
    }
  }

  /**
   * Forgets every L1 entry (the bus may have lost messages). Loads in flight still answer their
   * waiters but store nothing.
   */
  clearLocal (): void {
    for (const flight of this.#flights.values()) flight.floor = Infinity
    this.#flights.clear()
    this.#l1.clear()
    this.#generation++
  }

  /** What L1 holds for a key, without touching recency or counters (tests, debugging). */
  inspect (key: string): { version: number, floor: boolean, fresh: boolean, value?: unknown } | null {
    const entry = this.#l1.peek(key)
    if (entry === undefined) return null
    return entry.value === undefined
      ? { version: entry.version, floor: true, fresh: false }
      : { version: entry.version, floor: false, fresh: !this.#swr || this.#now() < entry.fresh, value: entry.value }
  }

  #hit (key: string, entry: L1Entry): void {
    this.counters.l1.hits++
    if (this.#swr && this.#now() >= entry.fresh) {
      this.counters.l1.staleHits++
      this.#refresh(key, entry.version)
    }
  }

  /** Once per key: a refresh already in flight (or a miss load) covers it. */
  #refresh (key: string, version: number): void {
    if (this.#flights.has(key)) return
    this.counters.refresh.started++
    this.#load(key, version, true).catch((err: unknown) => {
      this.counters.refresh.failed++
      this.#onRefreshError?.(err, key)
    })
  }

  #load (key: string, floor: number, skipL2: boolean): Promise<unknown> {
    const running = this.#flights.get(key)
    if (running) {
      this.counters.flights.joined++
      return running.promise
    }
    const flight: Flight = { floor, promise: Promise.resolve() }
    this.#flights.set(key, flight)
    this.counters.flights.started++
    flight.promise = this.#loadThrough(key, flight, skipL2).finally(() => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key)
    })
    return flight.promise
  }

  async #loadThrough (key: string, flight: Flight, skipL2: boolean): Promise<unknown> {
    if (this.#l2 && !skipL2) {
      const entry = await this.#l2.get(key)
      if (entry && entry.d !== undefined && entry.v >= flight.floor) {
        this.counters.l2.hits++
        return this.#fill(key, entry.v, entry.d, flight.floor)
      }
      if (entry !== undefined) this.counters.l2.misses++
    }
    const loaded = await this.#resolve(key)
    if (loaded === null) {
      // Gone from the store (its eviction never reached us): drop what we held.
      if (flight.floor !== Infinity && this.#l1.peek(key)?.value !== undefined) this.#l1.delete(key)
      return null
    }
    const value = this.#fill(key, loaded.version, loaded.value, flight.floor)
    if (this.#l2 && loaded.version >= flight.floor) {
      await this.#l2.write(key, { op: 'set', version: loaded.version, value: loaded.value })
    }
    return value
  }

  /**
   * Stores a loaded value in L1 unless something newer is known; returns the newest value this
   * replica holds for the key (a change may have landed while the load was in flight).
   */
  #fill (key: string, version: number, value: unknown, floor: number): unknown {
    const frozen = deepFreeze(value)
    const held = this.#l1.peek(key)
    if (held !== undefined && held.version > version) return held.value !== undefined ? held.value : frozen
    if (version < floor) return frozen
    this.#l1.set(key, { version, value: frozen, fresh: this.lifetime().fresh, size: sizeOf(frozen) }, { ttl: this.#hardTtl })
    return frozen
  }
}
