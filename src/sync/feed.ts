// Bus events to channel changes. Logo edits, deletions and the deadline go out as they arrive;
// vote counts are conflated: per conflation window each logo's newest count goes out once on
// `logos.<id>.votes` and `logos.<id>`, and the list gets one `votes` batch for all of them.
import type { BusEvent, BusMessage } from '../bus/types.js'
import type { DeadlineState, Logo } from '../domain.js'
import type { VotesBatch } from '../protocol.js'
import { listItemKey, listVotesKey, type BroadcastOptions, type ChangeType } from './broadcast.js'
import { channelForLogo, channelForLogoVotes, channelForUserVotes, DEADLINE_CHANNEL, LIST_CHANNEL } from './channels.js'
import { LogoTracker } from './logo-tracker.js'

export interface FeedTarget {
  /** Whether a channel has local subscribers (nothing is built for channels without). */
  has (channel: string): boolean
  broadcast (channel: string, type: ChangeType, version: number | null, data: unknown, opts?: BroadcastOptions): void
  /** Re-read `users.<sub>.votes` (every local one when sub is omitted) and push it. */
  refreshUserVotes (sub?: string): void
  /** Re-read the local `users.<sub>.votes` that may hold a logo (it was deleted) and push them. */
  refreshUserVotesHolding (logoId: string): void
  getLogo (id: string): Promise<Logo | null>
  warn (obj: object, msg: string): void
}

export class ChangeFeed {
  readonly logos = new LogoTracker()
  /** The newest deadline seen on the bus. */
  deadline: DeadlineState | null = null
  /** Logos with vote changes in the current window, with the earliest publish time among them. */
  private pending = new Map<string, number>()
  private readonly reading = new Set<string>()
  private timer: NodeJS.Timeout | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private readonly retryIds = new Set<string>()
  private immediate: NodeJS.Immediate | undefined
  private closed = false

  constructor (private readonly target: FeedTarget, private readonly conflateMs: number) {}

  handle (message: BusMessage): void {
    if (this.closed) return
    const e: BusEvent = message.event
    const at = message.publishedAt
    switch (e.kind) {
      case 'logo.created':
      case 'logo.updated':
        if (this.logos.observeLogo(e.logo)) this.sendLogo(e.logo, e.kind === 'logo.created' ? 'created' : 'updated', at)
        break
      case 'logo.deleted':
        this.sendDeleted(e.logoId, e.version, at)
        break
      case 'votes':
        if (this.logos.observeVotes(e.logoId, e.totalVotes, e.version)) this.markVotes(e.logoId, at)
        if (this.target.has(channelForUserVotes(e.userId))) this.target.refreshUserVotes(e.userId)
        break
      case 'deadline':
        if (this.deadline && e.version <= this.deadline.version) break
        this.deadline = { deadline: e.deadline, version: e.version }
        this.target.broadcast(DEADLINE_CHANNEL, 'updated', e.version, e.deadline, { publishedAt: at })
        break
    }
  }

  private sendLogo (logo: Logo, listType: 'created' | 'updated', publishedAt?: number): void {
    const t = this.target
    t.broadcast(channelForLogo(logo._id), 'updated', logo.version, logo, { publishedAt })
    t.broadcast(LIST_CHANNEL, listType, logo.version, logo, { key: listItemKey(LIST_CHANNEL, logo._id), itemId: logo._id, publishedAt })
  }

  private sendDeleted (id: string, version: number | null, publishedAt?: number): void {
    if (this.logos.isDeleted(id)) return
    this.logos.observeDeleted(id, version)
    this.pending.delete(id)
    const t = this.target
    const data = { _id: id }
    t.broadcast(channelForLogo(id), 'deleted', version, data, { publishedAt })
    t.broadcast(channelForLogoVotes(id), 'deleted', version, data, { publishedAt })
    t.broadcast(LIST_CHANNEL, 'deleted', version, data, { key: listItemKey(LIST_CHANNEL, id), itemId: id, publishedAt })
    // Deleting a logo deletes its votes: the local user-votes channels that held it changed.
    t.refreshUserVotesHolding(id)
  }

  private markVotes (id: string, publishedAt: number): void {
    if (!this.pending.has(id)) this.pending.set(id, publishedAt)
    if (this.timer || this.immediate) return
    if (this.conflateMs > 0) {
      this.timer = setTimeout(() => this.safeFlush(), this.conflateMs)
    } else {
      this.immediate = setImmediate(() => this.safeFlush())
    }
  }

  /** A timer callback must never throw: that would take the process down with it. */
  private safeFlush (): void {
    try {
      this.flush()
    } catch (err) {
      this.timer = undefined
      this.immediate = undefined
      this.target.warn({ err }, 'conflated vote fanout failed')
    }
  }

  /** Sends each pending logo's newest count once: the window's conflated output. */
  flush (): void {
    this.timer = undefined
    this.immediate = undefined
    if (this.closed) return
    const ids = this.pending
    this.pending = new Map()
    const t = this.target
    const batch: VotesBatch = {}
    let batchPublishedAt = Infinity
    for (const [id, publishedAt] of ids) {
      if (this.logos.isDeleted(id)) continue
      const votes = this.logos.votesNewerThan(id, 0)
      if (votes) t.broadcast(channelForLogoVotes(id), 'updated', votes.version, votes.totalVotes, { publishedAt })
      const whole = this.logos.current(id)
      if (whole) {
        t.broadcast(channelForLogo(id), 'updated', whole.version, whole, { publishedAt })
        batch[id] = { totalVotes: whole.totalVotes, version: whole.version }
        batchPublishedAt = Math.min(batchPublishedAt, publishedAt)
      } else if (t.has(channelForLogo(id)) || t.has(LIST_CHANNEL)) {
        // A gap: only a read can say what the whole logo is now.
        void this.readLogo(id)
      }
    }
    if (Object.keys(batch).length > 0) {
      t.broadcast(LIST_CHANNEL, 'votes', null, batch, { key: listVotesKey(LIST_CHANNEL), publishedAt: batchPublishedAt })
    }
  }

  private async readLogo (id: string): Promise<void> {
    if (this.reading.has(id)) return
    this.reading.add(id)
    try {
      const logo = await this.target.getLogo(id)
      if (this.closed) return
      if (!logo) {
        this.sendDeleted(id, null)
        return
      }
      this.logos.observeRead(logo)
      // A newer update may have been broadcast while the read was in flight: never send older after newer.
      this.sendLogo(this.logos.freshest(logo), 'updated')
      // Votes that arrived during the read are newer than it: another round next window.
      if (this.logos.newerThan(id, logo.version)) this.markVotes(id, Date.now())
    } catch (err) {
      this.target.warn({ err, logoId: id }, 'could not read a logo to close a version gap; retrying')
      this.retryLater(id)
    } finally {
      this.reading.delete(id)
    }
  }

  private retryLater (id: string): void {
    this.retryIds.add(id)
    if (this.retryTimer) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      const ids = [...this.retryIds]
      this.retryIds.clear()
      for (const retry of ids) this.markVotes(retry, Date.now())
    }, Math.max(this.conflateMs, 1000))
    this.retryTimer.unref()
  }

  /** After a bus gap: forget what was known (events may be missing) and pending counts. */
  reset (): void {
    this.logos.reset()
    this.deadline = null
    this.pending.clear()
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
    clearTimeout(this.retryTimer)
    if (this.immediate) clearImmediate(this.immediate)
    this.pending.clear()
  }
}
