// How incoming state is applied to what the client holds, channel by channel. Pure functions:
// each returns the next state, or null when the input is dropped (older than held) or changes
// nothing. The rules follow the design: single-entity channels compare against the version held;
// the `logos` list compares each item's own version; private channels are always sent whole.
import { isWholeChannel, type ChannelFrame, type Logo, type VotesBatch } from './protocol.js'
import type { ChannelRef } from './channels.js'
import type { ChannelState } from './types.js'

export const pendingState: ChannelState = Object.freeze({ data: undefined, version: null, status: 'pending', error: null, validating: false })

/** What is applied: a frame from the wire, or the same shape built from a REST response. */
export interface Incoming {
  type: ChannelFrame['type']
  version: number | null
  data: unknown
}

/**
 * Bookkeeping for the `logos` list. `live` and `votes` hold what arrived through live frames
 * since the current wire subscription began, so a snapshot read a moment earlier cannot undo
 * them; `tombstones` keep deleted ids so a late `updated` cannot bring an item back.
 * `ownVotes` holds counts from this client's own vote results (`vote()`/`unvote()`): shown on
 * top of their item until the wire brings that item to the result's version, but never raising
 * the item's version, since the result carries no title (a rename of a lower version, still
 * on its way, must not be dropped as older).
 */
export interface ListMemo {
  live: Map<string, Logo>
  votes: Map<string, { totalVotes: number, version: number }>
  tombstones: Map<string, number>
  ownVotes: Map<string, { totalVotes: number, version: number }>
}

export const createListMemo = (): ListMemo => ({ live: new Map(), votes: new Map(), tombstones: new Map(), ownVotes: new Map() })

/** Forget what was live on the previous wire subscription (called on every subscribe). */
export function resetLiveMemo (memo: ListMemo): void {
  memo.live.clear()
  memo.votes.clear()
}

const MAX_TOMBSTONES = 1000

const ready = <T>(data: T, version: number | null): ChannelState<T> =>
  ({ data, version, status: 'ready', error: null, validating: false })

export function applyIncoming (ref: ChannelRef, state: ChannelState, frame: Incoming, memo: ListMemo): ChannelState | null {
  if (ref.kind === 'logos') return applyToList(state, frame, memo)
  // Other whole channels (a user's votes; any kind the vocabulary marks whole) are sent whole:
  // each snapshot or update replaces what is held.
  if (isWholeChannel(ref)) {
    if (frame.type !== 'snapshot' && frame.type !== 'updated') return null
    return ready(frame.data, null)
  }
  return applyVersioned(state, frame)
}

/** Single-entity channels: anything not newer than the version held is dropped. */
function applyVersioned (state: ChannelState, frame: Incoming): ChannelState | null {
  const held = state.version
  if (frame.type === 'deleted') {
    if (held !== null && frame.version !== null && frame.version < held) return null
    if (state.status === 'deleted') return null
    return { data: undefined, version: frame.version ?? held, status: 'deleted', error: null, validating: false }
  }
  if (frame.type !== 'snapshot' && frame.type !== 'updated') return null
  if (held !== null && frame.version !== null && frame.version <= held) return null
  return ready(frame.data, frame.version)
}

function applyToList (state: ChannelState, frame: Incoming, memo: ListMemo): ChannelState | null {
  const items = state.status === 'ready' ? (state.data as Logo[]) : undefined
  switch (frame.type) {
    case 'snapshot': {
      const next = mergeSnapshot(items, frame.data as Logo[], memo)
      // Nothing moved: keep the held list (and its identity, so React does not re-render).
      if (items && next.length === items.length && next.every((l, i) => l === items[i])) return null
      return ready(next, null)
    }
    case 'created':
    case 'updated': {
      const logo = frame.data as Logo
      const version = frame.version ?? logo.version
      if ((memo.tombstones.get(logo._id) ?? 0) >= version) return null
      const known = memo.live.get(logo._id)
      if (known && known.version >= version) return null
      const incoming = withOwnVote(memo, version === logo.version ? logo : { ...logo, version })
      if (!items) {
        memo.live.set(logo._id, incoming)
        return null
      }
      const index = items.findIndex((l) => l._id === logo._id)
      if (index >= 0 && items[index].version >= version) return null
      memo.live.set(logo._id, incoming)
      const next = items.slice()
      if (index >= 0) next[index] = incoming
      else next.push(incoming)
      return ready(next, null)
    }
    case 'deleted': {
      const id = (frame.data as { _id: string })._id
      const held = items?.find((l) => l._id === id) ?? memo.live.get(id)
      if (held && frame.version !== null && frame.version < held.version) return null
      rememberTombstone(memo, id, frame.version ?? Number.MAX_SAFE_INTEGER)
      memo.live.delete(id)
      memo.ownVotes.delete(id)
      if (!items || !items.some((l) => l._id === id)) return null
      return ready(items.filter((l) => l._id !== id), null)
    }
    case 'votes': {
      const batch = frame.data as VotesBatch
      for (const [id, count] of Object.entries(batch)) {
        const known = memo.votes.get(id)
        if (!known || known.version < count.version) memo.votes.set(id, count)
      }
      if (!items) return null
      let changed = false
      const next = items.map((l) => {
        const count = batch[l._id]
        if (!count || count.version <= l.version) return l
        changed = true
        return withOwnVote(memo, { ...l, totalVotes: count.totalVotes, version: count.version })
      })
      return changed ? ready(next, null) : null
    }
  }
}

/**
 * A whole list (snapshot or REST) against what is held: per item the newest version wins,
 * deleted ids stay deleted, and items that arrived live after the list was read are kept.
 */
function mergeSnapshot (held: Logo[] | undefined, incoming: Logo[], memo: ListMemo): Logo[] {
  const heldById = new Map((held ?? []).map((l) => [l._id, l]))
  const out: Logo[] = []
  const seen = new Set<string>()
  const newest = (...candidates: (Logo | undefined)[]) =>
    candidates.reduce<Logo | undefined>((best, c) => (c && (!best || c.version > best.version) ? c : best), undefined)!
  const withVotes = (logo: Logo) => {
    const count = memo.votes.get(logo._id)
    return withOwnVote(memo, count && count.version > logo.version ? { ...logo, totalVotes: count.totalVotes, version: count.version } : logo)
  }
  for (const item of incoming) {
    if ((memo.tombstones.get(item._id) ?? 0) >= item.version) continue
    seen.add(item._id)
    const h = heldById.get(item._id)
    // Keep the held object when nothing moved, so unchanged lists keep their identity.
    out.push(withVotes(h && h.version >= item.version ? h : newest(item, memo.live.get(item._id))))
  }
  for (const logo of memo.live.values()) {
    if (!seen.has(logo._id) && (memo.tombstones.get(logo._id) ?? 0) < logo.version) out.push(withVotes(logo))
  }
  return out
}

/**
 * This client's own vote result (`{ totalVotes, version }` from the REST answer) on the list:
 * the count shows at once, the item keeps the version it came with (see ListMemo.ownVotes).
 */
export function applyOwnVote (state: ChannelState, memo: ListMemo, id: string, count: { totalVotes: number, version: number }): ChannelState | null {
  if ((memo.tombstones.get(id) ?? 0) >= count.version) return null
  const items = state.status === 'ready' ? (state.data as Logo[]) : undefined
  const index = items ? items.findIndex((l) => l._id === id) : -1
  if (items && index >= 0 && items[index].version >= count.version) return null
  const known = memo.ownVotes.get(id)
  if (known && known.version >= count.version) return null
  memo.ownVotes.set(id, count)
  if (!items || index < 0) return null
  const item = withOwnVote(memo, items[index])
  if (item === items[index]) return null
  const next = items.slice()
  next[index] = item
  return ready(next, null)
}

/** An item with this client's newer own vote count on top (same version); drops the count once the item caught up. */
function withOwnVote (memo: ListMemo, logo: Logo): Logo {
  const own = memo.ownVotes.get(logo._id)
  if (!own) return logo
  if (logo.version >= own.version) {
    memo.ownVotes.delete(logo._id)
    return logo
  }
  return logo.totalVotes === own.totalVotes ? logo : { ...logo, totalVotes: own.totalVotes }
}

function rememberTombstone (memo: ListMemo, id: string, version: number): void {
  memo.tombstones.set(id, Math.max(version, memo.tombstones.get(id) ?? 0))
  if (memo.tombstones.size > MAX_TOMBSTONES) {
    const oldest = memo.tombstones.keys().next().value
    if (oldest !== undefined) memo.tombstones.delete(oldest)
  }
}

/**
 * `next`, with every part deep-equal to `prev` replaced by `prev`'s (plain objects and arrays):
 * data that did not change keeps its identity, so React does not re-render for it.
 */
export function keepEqual<T> (prev: unknown, next: T): T {
  if (Object.is(prev, next)) return prev as T
  if (!isPlain(prev) || !isPlain(next) || Array.isArray(prev) !== Array.isArray(next)) return next
  const a = prev as Record<string, unknown>
  const b = next as Record<string, unknown>
  const keys = Object.keys(b)
  let same = keys.length === Object.keys(a).length
  const out: Record<string, unknown> = Array.isArray(b) ? [] as unknown as Record<string, unknown> : {}
  for (const k of keys) {
    out[k] = keepEqual(a[k], b[k])
    if (out[k] !== a[k] || !(k in a)) same = false
  }
  return (same ? prev : out) as T
}

const isPlain = (x: unknown): boolean => {
  if (!x || typeof x !== 'object') return false
  const proto = Object.getPrototypeOf(x)
  return proto === Object.prototype || proto === Array.prototype || proto === null
}
