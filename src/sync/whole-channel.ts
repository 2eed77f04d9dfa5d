// Whole channels (the list, a user's votes) have no version to order their states by, so every
// read of one runs in turn: a later read never finishes before an earlier one, and what a
// subscriber is sent never goes back in time. Concurrent snapshot requests share one read.
import type { Logo } from '../domain.js'
import { channelForUserVotes, LIST_CHANNEL, type WholeChannel } from './channels.js'

export interface WholeRead<T> {
  data: T
  /** Increases with every read; a subscriber ignores refreshes from reads before its snapshot. */
  seq: number
}

export class WholeChannelReader<T> {
  private seq = 0
  private running = false
  private refreshWanted = false
  private waiters: Array<{ resolve: (r: WholeRead<T>) => void, reject: (err: unknown) => void }> = []
  private retryTimer: NodeJS.Timeout | undefined
  private closed = false
  /** The last read's data (null before the first, or after a failed one). */
  private last: T | null = null

  constructor (
    private readonly read: () => Promise<T>,
    /** A refresh's result, for the subscribers already holding a snapshot. */
    private readonly onRefresh: (result: WholeRead<T>) => void,
    private readonly onError: (err: unknown) => void,
    private readonly retryMs = 1000
  ) {}

  /** The state for a new subscriber, from a read that starts after this call. */
  snapshot (): Promise<WholeRead<T>> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject })
      void this.run()
    })
  }

  /**
   * Whether the channel's state may satisfy `test`: its last read does, or no read settles it
   * (none yet, one running or wanted, the last one failed). A change that can only matter to
   * states that satisfy it then needs no re-read where this is false: what a later read would
   * find is what the last one found.
   */
  mayHold (test: (data: T) => boolean): boolean {
    return this.running || this.refreshWanted || this.waiters.length > 0 || this.last === null || test(this.last)
  }

  /** Re-reads and pushes the result to current subscribers (after a change or a bus gap). */
  refresh (): void {
    this.refreshWanted = true
    void this.run()
  }

  close (): void {
    this.closed = true
    clearTimeout(this.retryTimer)
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w.reject(new Error('channel closed'))
  }

  private async run (): Promise<void> {
    if (this.running || this.closed) return
    this.running = true
    try {
      while (!this.closed && (this.refreshWanted || this.waiters.length > 0)) {
        const refresh = this.refreshWanted
        const waiters = this.waiters
        this.refreshWanted = false
        this.waiters = []
        const seq = ++this.seq
        try {
          const data = await this.read()
          this.last = data
          if (this.closed) break
          if (refresh) this.onRefresh({ data, seq })
          for (const w of waiters) w.resolve({ data, seq })
        } catch (err) {
          this.last = null
          for (const w of waiters) w.reject(err)
          if (refresh) {
            this.onError(err)
            clearTimeout(this.retryTimer)
            this.retryTimer = setTimeout(() => this.refresh(), this.retryMs)
            this.retryTimer.unref()
          }
        }
      }
    } finally {
      this.running = false
    }
  }
}

export interface WholeChannelDeps {
  readList (): Promise<Logo[]>
  readUserVotes (sub: string): Promise<string[]>
  /** Pushes a refresh to the channel's subscribers (the list as a `snapshot`, votes as `updated`). */
  push (channel: string, type: 'snapshot' | 'updated', data: unknown, readSeq: number): void
  warn (obj: object, msg: string): void
}

/** A whole channel whose state is read (presence is held in memory: src/presence). */
export type ReadWholeChannel = Exclude<WholeChannel, { kind: 'presence' }>

/** The whole channels with local subscribers: the list, and each user's votes. */
export class WholeChannels {
  private readonly list: WholeChannelReader<Logo[]>
  private readonly users = new Map<string, WholeChannelReader<string[]>>()

  constructor (private readonly deps: WholeChannelDeps) {
    this.list = new WholeChannelReader(
      deps.readList,
      ({ data, seq }) => deps.push(LIST_CHANNEL, 'snapshot', data, seq),
      (err) => deps.warn({ err, channel: LIST_CHANNEL }, 'could not re-read the logo list; retrying')
    )
  }

  private reader (channel: ReadWholeChannel): WholeChannelReader<Logo[]> | WholeChannelReader<string[]> {
    switch (channel.kind) {
      case 'logos': return this.list
      case 'userVotes': return this.userReader(channel)
      default: {
        // Every whole kind that is read has its case above: a new one does not compile until it has.
        const none: never = channel
        throw new Error(`no reader for ${(none as ReadWholeChannel).name}`)
      }
    }
  }

  private userReader (channel: Extract<ReadWholeChannel, { kind: 'userVotes' }>): WholeChannelReader<string[]> {
    let reader = this.users.get(channel.name)
    if (!reader) {
      const { name, sub } = channel
      reader = new WholeChannelReader(
        () => this.deps.readUserVotes(sub),
        ({ data, seq }) => this.deps.push(name, 'updated', data, seq),
        (err) => this.deps.warn({ err, channel: name }, 'could not re-read the votes of a user; retrying')
      )
      this.users.set(name, reader)
    }
    return reader
  }

  /** State for a new subscriber of the list or of `users.<sub>.votes`. */
  snapshot (channel: ReadWholeChannel): Promise<WholeRead<unknown>> {
    return this.reader(channel).snapshot()
  }

  refresh (channel: ReadWholeChannel): void {
    if (channel.kind === 'logos') this.list.refresh()
    else this.users.get(channel.name)?.refresh()
  }

  /** Re-reads one user's votes, or every local user's when `sub` is omitted. */
  refreshUserVotes (sub?: string): void {
    if (sub !== undefined) this.users.get(channelForUserVotes(sub))?.refresh()
    else for (const reader of this.users.values()) reader.refresh()
  }

  /**
   * A logo was deleted (and its votes with it): re-reads the votes of the local users that may
   * hold it, not every user's (at 10,000 connections with a private channel each, a deletion
   * would otherwise be 10,000 store reads on every replica).
   */
  refreshUserVotesHolding (logoId: string): void {
    for (const reader of this.users.values()) {
      if (reader.mayHold((ids) => ids.includes(logoId))) reader.refresh()
    }
  }

  /** The channel's last local subscriber left. */
  release (name: string): void {
    const reader = this.users.get(name)
    if (!reader) return
    reader.close()
    this.users.delete(name)
  }

  close (): void {
    this.list.close()
    for (const reader of this.users.values()) reader.close()
    this.users.clear()
  }
}
