// The logo domain on top of the cache core: which keys exist, how a committed change (a BusEvent)
// maps onto them, and how the list is kept exact while vote counts move constantly.
//
// Keys (L1 and, under `<REDIS_KEY_PREFIX>cache:`, L2):
//   logo:<id>     the Logo at its version. Vote counts are read from it too: a vote bumps the
//                 logo's version, so `{ totalVotes, version }` is always the entry's own.
//   deadline      the DeadlineState at its own version.
//   logos:index   the ordered ids of all logos (no version of its own; see below).
// The list is never cached whole: it is the index plus each item's `logo:<id>` entry, so a vote
// (or an edit) changes exactly one entry, applied by version like any other, and the list read
// right after it is built from that entry. The index only changes on create and delete; those
// drop it (here: an epoch that also voids loads in flight; in L2: a generation counter that
// refuses an index read before the change), and the next read rebuilds it.
// `users.<sub>.votes` (GET /me/votes) is not cached: private, per user, read rarely.
import type { BusEvent } from '../bus/types.js'
import type { DeadlineState, Logo } from '../domain.js'
import type { Store } from '../store/types.js'
import { SyncCache } from './sync-cache.js'
import { createCounters, type CacheCounters, type CacheStrategy, type Change, type L2 } from './types.js'

export const cacheKeys = {
  logo: (id: string) => `logo:${id}`,
  deadline: 'deadline',
  index: 'logos:index'
} as const

const LOGO_PREFIX = 'logo:'

export interface LogoCacheOptions {
  store: Store
  l2?: L2 | null
  strategy: CacheStrategy
  ttlMs: number
  staleMs: number
  maxEntries: number
  maxBytes: number
  counters?: CacheCounters
  now?: () => number
  onRefreshError?: (err: unknown, key: string) => void
}

/** The cache changes one committed event makes. Shared by write-through and bus delivery. */
export function changesFor (event: BusEvent): { key: string, change: Change }[] {
  switch (event.kind) {
    case 'logo.created':
    case 'logo.updated':
      return [{ key: cacheKeys.logo(event.logo._id), change: { op: 'set', version: event.logo.version, value: event.logo } }]
    case 'logo.deleted':
      return [{ key: cacheKeys.logo(event.logoId), change: { op: 'evict', version: event.version } }]
    case 'votes':
      // A vote changes only the count, and bumps the version by one: exact on top of version - 1.
      return [{
        key: cacheKeys.logo(event.logoId),
        change: { op: 'patch', version: event.version, base: event.version - 1, fields: { totalVotes: event.totalVotes, version: event.version } satisfies Partial<Logo> }
      }]
    case 'deadline':
      return [{ key: cacheKeys.deadline, change: { op: 'set', version: event.version, value: { deadline: event.deadline, version: event.version } satisfies DeadlineState } }]
  }
}

const changesIndex = (event: BusEvent) => event.kind === 'logo.created' || event.kind === 'logo.deleted'

export function createLogoCache (opts: LogoCacheOptions) {
  const { store } = opts
  const l2 = opts.l2 ?? null
  const counters = opts.counters ?? createCounters()

  function readStore<T> (kind: 'logo' | 'list' | 'deadline', read: () => Promise<T>): Promise<T> {
    counters.store.reads++
    counters.store[kind]++
    return read()
  }

  const core = new SyncCache({
    strategy: opts.strategy,
    ttlMs: opts.ttlMs,
    staleMs: opts.staleMs,
    maxEntries: opts.maxEntries,
    maxBytes: opts.maxBytes,
    l2,
    counters,
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.onRefreshError ? { onRefreshError: opts.onRefreshError } : {}),
    async resolve (key) {
      if (key === cacheKeys.deadline) {
        const state = await readStore('deadline', () => store.getDeadline())
        return { version: state.version, value: state }
      }
      if (key.startsWith(LOGO_PREFIX)) {
        const logo = await readStore('logo', () => store.getLogo(key.slice(LOGO_PREFIX.length)))
        return logo ? { version: logo.version, value: logo } : null
      }
      throw new Error(`no store read for cache key ${key}`)
    }
  })

  // The id index lives beside the core: it has no version, so it is guarded by an epoch instead.
  let index: { ids: readonly string[], fresh: number, hard: number } | null = null
  let indexEpoch = 0
  let indexFlight: { epoch: number, promise: Promise<readonly string[]> } | null = null
  const indexTtlL2 = opts.ttlMs > 0 ? Math.max(1, Math.floor(opts.ttlMs * 0.9)) : 0 // expires before the items it names

  function dropIndex (): void {
    indexEpoch++
    index = null
    if (indexFlight) counters.flights.superseded++
    indexFlight = null
  }

  function keepIndex (epoch: number, ids: string[]): readonly string[] {
    const frozen = Object.freeze(ids)
    if (epoch === indexEpoch) index = { ids: frozen, ...core.lifetime() }
    return frozen
  }

  function loadIndex (skipL2: boolean): Promise<readonly string[]> {
    if (indexFlight && indexFlight.epoch === indexEpoch) {
      counters.flights.joined++
      return indexFlight.promise
    }
    const epoch = indexEpoch
    const generation = core.generation
    counters.flights.started++
    const flight = {
      epoch,
      promise: (async () => {
        if (l2 && !skipL2) {
          const entry = await l2.get(cacheKeys.index)
          if (entry && Array.isArray(entry.d)) {
            counters.l2.hits++
            return keepIndex(epoch, entry.d as string[])
          }
          if (entry !== undefined) counters.l2.misses++
        }
        // Read the L2 generation before the store: an index read before a create/delete is refused.
        const l2Generation = l2 ? await l2.readGeneration(cacheKeys.index) : undefined
        const logos = await readStore('list', () => store.listLogos())
        const ids = logos.map((logo) => logo._id)
        await core.fillMany(logos.map((logo) => ({ key: cacheKeys.logo(logo._id), loaded: { version: logo.version, value: logo } })), generation, true)
        // The generation alone decides for L2 (the local epoch also moves when our own event
        // arrives late, which says nothing about what L2 should hold).
        if (l2 && l2Generation !== undefined) await l2.setIfGeneration(cacheKeys.index, l2Generation, ids, indexTtlL2)
        return keepIndex(epoch, ids)
      })().finally(() => { if (indexFlight === flight) indexFlight = null })
    }
    indexFlight = flight
    return flight.promise
  }

  function readIndex (): Promise<readonly string[]> {
    const now = core.now()
    if (index && now < index.hard) {
      counters.l1.hits++
      if (now >= index.fresh && core.revalidates && !indexFlight) {
        counters.l1.staleHits++
        counters.refresh.started++
        loadIndex(true).catch((err: unknown) => {
          counters.refresh.failed++
          opts.onRefreshError?.(err, cacheKeys.index)
        })
      }
      return Promise.resolve(index.ids)
    }
    counters.l1.misses++
    return loadIndex(false)
  }

  return {
    counters,

    getLogo: (id: string): Promise<Logo | null> => core.get<Logo>(cacheKeys.logo(id)),

    async listLogos (): Promise<Logo[]> {
      const ids = await readIndex()
      const items = await core.getMany<Logo>(ids.map(cacheKeys.logo))
      return items.filter((logo): logo is Logo => logo !== null)
    },

    async getDeadline (): Promise<DeadlineState> {
      return (await core.get<DeadlineState>(cacheKeys.deadline))!
    },

    /** After a store commit, before publishing: both levels get the new versions. Never throws for L2. */
    async writeThrough (event: BusEvent): Promise<void> {
      for (const { key, change } of changesFor(event)) await core.write(key, change)
      if (changesIndex(event)) {
        // L2 first: a list read between the two steps must not rebuild L1 from the old L2 index
        // (this replica skips dropIndex for its own bus event, so nothing would correct it).
        if (l2) await l2.bumpGeneration(cacheKeys.index)
        dropIndex()
      }
    },

    /**
     * A committed change from the bus (any replica, this one included): L1 only, by version.
     * `own`: this replica published it, so writeThrough already dropped the index; an index
     * rebuilt since then was read after the commit and stays.
     */
    apply (event: BusEvent, own = false): void {
      for (const { key, change } of changesFor(event)) core.apply(key, change)
      if (changesIndex(event) && !own) dropIndex()
    },

    /** The bus lost messages: forget L1 (L2 was written before each publish, or replayed before the resync notice went out). */
    resync (): void {
      core.clearLocal()
      dropIndex()
    },

    /** Counters and sizes, for metrics. */
    stats () {
      return {
        strategy: opts.strategy,
        ttlMs: opts.ttlMs,
        l1: { ...counters.l1, entries: core.entries + (index ? 1 : 0), bytes: core.bytes },
        l2: { enabled: l2 !== null, available: l2?.available ?? false, pendingWrites: l2?.pendingWrites ?? 0, ...counters.l2 },
        store: { ...counters.store },
        flights: { ...counters.flights },
        events: { ...counters.events },
        refresh: { ...counters.refresh }
      }
    },

    /** What each level holds for a key (tests and the debug route); touches no counters. */
    async inspect (key: string): Promise<{ key: string, l1: unknown, l2: unknown }> {
      const l1 = key === cacheKeys.index
        ? (index ? { ids: index.ids, fresh: core.now() < index.fresh } : null)
        : core.inspect(key)
      const raw = l2 ? await l2.inspect(key) : null
      let parsed: unknown = raw ?? null
      try { if (typeof raw === 'string') parsed = JSON.parse(raw) } catch {}
      return { key, l1, l2: parsed }
    },

    close (): void {
      l2?.close()
    }
  }
}

export type LogoCache = ReturnType<typeof createLogoCache>
export type CacheStats = ReturnType<LogoCache['stats']>
