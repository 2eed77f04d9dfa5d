// What this replica knows of each logo from the bus and its own reads, so a vote burst can
// update `logos.<id>` and the list without a store read per vote.
//
// Every change bumps a logo's version by exactly one. If the last whole logo we hold is at
// version n and the next event is a vote at n+1, that vote is the only difference: the whole
// logo at n+1 is the one we hold with the new count. Any other sequence (an event lost or
// reordered between replicas) leaves a gap, and the logo must be read again before a whole
// logo or a list vote entry is sent for it; otherwise a client could hold an old title under a
// new version and never be corrected.
import type { Logo } from '../domain.js'

interface Entry {
  /** The newest whole logo known (from an event or a read). */
  base: Logo | null
  /** The highest version seen in any event or read. */
  seen: number
  /** The newest vote count known and its version. */
  votes: { totalVotes: number, version: number } | null
  deleted: boolean
}

export class LogoTracker {
  private readonly entries = new Map<string, Entry>()

  private entry (id: string): Entry {
    let e = this.entries.get(id)
    if (!e) {
      e = { base: null, seen: 0, votes: null, deleted: false }
      this.entries.set(id, e)
    }
    return e
  }

  /** A whole logo from a bus event. True if it is newer than every event seen before. */
  observeLogo (logo: Logo): boolean {
    const e = this.entry(logo._id)
    if (logo.version <= e.seen) return false
    e.deleted = false
    e.seen = logo.version
    this.keep(e, logo)
    return true
  }

  /**
   * A whole logo from a read. It may be ahead of the events that have arrived so far, so it
   * only updates what is held, never what was seen: the events it is ahead of must still go out
   * to the subscribers that have not read it.
   */
  observeRead (logo: Logo): void {
    const e = this.entry(logo._id)
    if (e.deleted && logo.version <= e.seen) return
    this.keep(e, logo)
  }

  private keep (e: Entry, logo: Logo): void {
    if (!e.base || logo.version > e.base.version) e.base = logo
    if (!e.votes || logo.version > e.votes.version) e.votes = { totalVotes: logo.totalVotes, version: logo.version }
  }

  /** A vote event. False if it is older than what is known (nothing to send). */
  observeVotes (id: string, totalVotes: number, version: number): boolean {
    const e = this.entry(id)
    if (version <= e.seen) return false
    if (e.base && e.base.version === e.seen && version === e.seen + 1) {
      e.base = { ...e.base, totalVotes, version }
    }
    e.seen = version
    if (!e.votes || version > e.votes.version) e.votes = { totalVotes, version }
    return true
  }

  observeDeleted (id: string, version: number | null): void {
    const e = this.entry(id)
    e.deleted = true
    e.base = null
    e.votes = null
    if (version !== null && version > e.seen) e.seen = version
  }

  isDeleted (id: string): boolean {
    return this.entries.get(id)?.deleted ?? false
  }

  /** The whole logo at (or past) the newest version seen, or null if a read is needed to know it. */
  current (id: string): Logo | null {
    const e = this.entries.get(id)
    return e?.base && e.base.version >= e.seen ? e.base : null
  }

  /** Whether something newer than `version` has been seen for the logo. */
  newerThan (id: string, version: number): boolean {
    return (this.entries.get(id)?.seen ?? 0) > version
  }

  /** The newer of a read logo and the whole logo held (a cached read can lag an event). */
  freshest (logo: Logo): Logo {
    const base = this.entries.get(logo._id)?.base
    return base && base.version > logo.version ? base : logo
  }

  /** The newest vote count known, if newer than `version`. */
  votesNewerThan (id: string, version: number): { totalVotes: number, version: number } | null {
    const votes = this.entries.get(id)?.votes
    return votes && votes.version > version ? votes : null
  }

  /** After a bus gap nothing held can be trusted. */
  reset (): void {
    this.entries.clear()
  }
}
