// Shapes shared by the cache core (sync-cache.ts), the Redis L2 (redis-l2.ts) and the domain
// layer (logo-cache.ts). Every cached value carries the version it was read or written at;
// all decisions ("is this newer?") compare those versions and nothing else.

export const CacheStrategy = {
  cacheFirst: 'cache-first',
  staleWhileRevalidate: 'stale-while-revalidate'
} as const
export type CacheStrategy = typeof CacheStrategy[keyof typeof CacheStrategy]

/** A value as read from the store, with its version. */
export interface Versioned<T = unknown> {
  version: number
  value: T
}

/**
 * A committed change to one key. `set` carries the whole new value; `patch` carries only some
 * fields and is exact only on top of the value at version `base` (otherwise it degrades to a
 * floor); `evict` removes the value and leaves a floor so no older value can come back.
 */
export type Change<T = unknown> =
  | { op: 'set', version: number, value: T }
  | { op: 'patch', version: number, base: number, fields: Partial<T> }
  | { op: 'evict', version: number }

/**
 * An L2 entry as stored (JSON): `{ v, d }`, or a floor `{ v }` with no data. A floor says
 * "anything older than v is stale": readers treat it as a miss, writers below v are refused.
 */
export interface L2Entry {
  v: number
  d?: unknown
}

/** What the cache core needs from a second level. Methods never throw: an unavailable L2 answers `undefined`. */
export interface L2 {
  get (key: string): Promise<L2Entry | null | undefined>
  mget (keys: string[]): Promise<(L2Entry | null)[] | undefined>
  /** Applies a change with an atomic compare-on-version; remembered and replayed if L2 is away. */
  write (key: string, change: Change): Promise<void>
  /** Writes many `set`s in one round trip (list loads). */
  writeMany (entries: { key: string, change: Change }[]): Promise<void>
  /** Generation-guarded entries (unversioned values such as the logo id index). */
  readGeneration (key: string): Promise<string | undefined>
  setIfGeneration (key: string, generation: string, value: unknown, ttlMs: number): Promise<void>
  bumpGeneration (key: string): Promise<void>
  /** The raw stored entry, for inspection in tests and debugging; no counters touched. */
  inspect (key: string): Promise<string | null | undefined>
  readonly available: boolean
  readonly pendingWrites: number
  /** Resolves once no missed write waits to be replayed. */
  settled (): Promise<void>
  close (): void
}

/** Counters, shared by both levels; read through `snapshot()` for metrics. */
export interface CacheCounters {
  l1: { hits: number, misses: number, staleHits: number }
  l2: { hits: number, misses: number, errors: number, skipped: number, writes: number, rejected: number }
  store: { reads: number, logo: number, list: number, deadline: number }
  flights: { started: number, joined: number, superseded: number }
  events: { applied: number, ignored: number }
  refresh: { started: number, failed: number }
}

export function createCounters (): CacheCounters {
  return {
    l1: { hits: 0, misses: 0, staleHits: 0 },
    l2: { hits: 0, misses: 0, errors: 0, skipped: 0, writes: 0, rejected: 0 },
    store: { reads: 0, logo: 0, list: 0, deadline: 0 },
    flights: { started: 0, joined: 0, superseded: 0 },
    events: { applied: 0, ignored: 0 },
    refresh: { started: 0, failed: 0 }
  }
}

/** Minimal structured logger (pino's shape), so the cache does not depend on Fastify. */
export interface CacheLogger {
  warn (obj: object, msg: string): void
  info (obj: object, msg: string): void
}

/** Values handed out by the cache are shared between requests: freeze them so no caller can edit another's. */
export function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value as object)) deepFreeze(v)
  }
  return value
}
