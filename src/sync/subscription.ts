// One connection's subscription to one channel, and the one rule for "does this subscriber
// still need this change?":
// - while the channel's state is being read, changes wait (newest per backlog key);
// - once the state is sent, what waited is kept only if the state does not already cover it;
// - on a versioned channel, nothing at or below the version the client holds goes out.
// How two pending changes for one key combine (newer wins, vote batches merge) is keepNewer in
// broadcast.ts, shared with the connection's backlog.
import { filterVotesBatch, keepNewer, type Broadcast } from './broadcast.js'
import { isWholeChannel, type Channel } from './channels.js'

/** The state a subscriber was sent on (re)subscribe, against which waiting changes are judged. */
export type SentState =
  /** Versioned channel: the version sent (or the client's own, when its `since` was current). */
  | { version: number | null }
  /**
   * Whole channel: the serial read it came from (whole-channel.ts), and on the list the version
   * of every item it held.
   */
  | { readSeq: number, items: ReadonlyMap<string, number> | null }

export class Subscription {
  /** Versioned channels drop anything not newer than what the client holds. */
  readonly versioned: boolean
  /** Highest version sent (versioned channels). */
  private version: number | null = null
  /** Changes that arrived while the state was read, newest per key; null once it is sent. */
  private waiting: Map<string, Broadcast> | null = new Map()

  constructor (readonly channel: Channel) {
    this.versioned = !isWholeChannel(channel)
  }

  get loading (): boolean {
    return this.waiting !== null
  }

  /** A change on the channel: what to send now, or null (it waits for the state, or the client has it). */
  accept (b: Broadcast): Broadcast | null {
    if (this.waiting) {
      // Bounded by the channel's keys (one per list item at most), whatever the burst.
      const held = this.waiting.get(b.key)
      this.waiting.delete(b.key)
      this.waiting.set(b.key, held ? keepNewer(held, b) : b)
      return null
    }
    if (this.versioned && b.version !== null) {
      if (this.version !== null && b.version <= this.version) return null
      this.version = b.version
    }
    return b
  }

  /** The state went out: from now on changes pass through; returns those that waited and are still needed. */
  sent (state: SentState): Broadcast[] {
    const waiting = this.waiting ?? new Map<string, Broadcast>()
    this.waiting = null
    if ('version' in state) this.version = state.version
    const out: Broadcast[] = []
    for (const b of waiting.values()) {
      const rest = 'readSeq' in state ? notCovered(b, state) : b
      const needed = rest && this.accept(rest)
      if (needed) out.push(needed)
    }
    return out
  }
}

/** What of a change that waited during a whole channel's read its state does not already hold. */
function notCovered (b: Broadcast, state: { readSeq: number, items: ReadonlyMap<string, number> | null }): Broadcast | null {
  if (b.readSeq !== undefined) return b.readSeq > state.readSeq ? b : null
  const items = state.items
  if (!items) return b
  if (b.type === 'votes') return filterVotesBatch(b, (itemId, v) => v > (items.get(itemId) ?? 0))
  if (b.itemId === undefined || b.version === null) return b
  const version = items.get(b.itemId)
  if (version === undefined) return b.type === 'deleted' ? null : b
  return b.version > version ? b : null
}
