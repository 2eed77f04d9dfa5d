// This replica's subscriptions: which connections are on which channel (the registry), the
// serial readers of whole channels, and every way a subscription starts or ends (subscribe
// handshake, unsubscribe, drop on a revoked right, leave on disconnect). A change reaches a
// channel's subscribers through `broadcast`; each Subscription decides what its client still
// needs (subscription.ts).
import type { Logo } from '../domain.js'
import { ErrorCode, type RequestId, type SubscribeFrame } from '../protocol.js'
import { makeBroadcast, type BroadcastOptions, type ChangeType } from './broadcast.js'
import { PRESENCE_CHANNEL, isWholeChannel, parseChannel, readAccess, type VersionedChannel } from './channels.js'
import type { SyncConnection } from './connection.js'
import { withId } from './frames.js'
import { ChannelRegistry } from './registry.js'
import type { VersionedState } from './snapshots.js'
import type { SinceOutcome, SyncStats } from './stats.js'
import { Subscription } from './subscription.js'
import { WholeChannels } from './whole-channel.js'

/** How a channel's current state is read (never older than what the replica knows from the bus). */
export interface StateReads {
  versioned (channel: VersionedChannel): Promise<VersionedState>
  list (): Promise<Logo[]>
  userVotes (sub: string): Promise<string[]>
}

/**
 * Presence (src/presence): subscribing to its channel makes the connection present, and the
 * state is the total across replicas with it counted; leaving the channel (or disconnecting)
 * makes it absent.
 */
export interface PresenceMembership {
  join (conn: SyncConnection): void
  leave (conn: SyncConnection): void
  readonly total: number
  /** Numbers the totals pushed (as their `readSeq`): the state covers every push up to this. */
  readonly seq: number
}

export interface SubscriptionsOptions {
  reads: StateReads
  presence: PresenceMembership
  stats: SyncStats
  /** SYNC_MAX_SUBSCRIPTIONS: per connection. */
  maxSubscriptions: number
  warn (obj: object, msg: string): void
}

const sleep = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms).unref() })

export class Subscriptions {
  private readonly registry: ChannelRegistry
  private readonly whole: WholeChannels
  private readonly reads: StateReads
  private readonly presence: PresenceMembership
  private readonly stats: SyncStats
  private readonly maxSubscriptions: number
  private readonly warn: SubscriptionsOptions['warn']
  private closed = false

  constructor (opts: SubscriptionsOptions) {
    this.reads = opts.reads
    this.presence = opts.presence
    this.stats = opts.stats
    this.maxSubscriptions = opts.maxSubscriptions
    this.warn = opts.warn
    this.registry = new ChannelRegistry(opts.stats)
    this.whole = new WholeChannels({
      readList: () => this.reads.list(),
      readUserVotes: (sub) => this.reads.userVotes(sub),
      push: (channel, type, data, readSeq) => this.broadcast(channel, type, null, data, { readSeq }),
      warn: opts.warn
    })
  }

  /** Whether a channel has local subscribers (nothing is built for channels without). */
  has (channel: string): boolean {
    return this.registry.has(channel)
  }

  /** Serialises a change once and hands the same bytes to every local subscriber. */
  broadcast (channel: string, type: ChangeType, version: number | null, data: unknown, opts: BroadcastOptions & { readSeq?: number } = {}): void {
    const subscribers = this.registry.subscribers(channel)
    if (!subscribers || subscribers.size === 0) return
    const { publishedAt, ...rest } = opts
    const b = makeBroadcast(channel, type, version, data, rest)
    const started = performance.now()
    subscribers.forEach((sub, conn) => { conn.deliver(b, sub) })
    this.stats.fanout((performance.now() - started) / 1000, subscribers.size)
    if (publishedAt !== undefined) this.stats.delivery(Math.max(0, Date.now() - publishedAt) / 1000)
  }

  /**
   * The subscribe handshake: access and limits, then `subscribed` and the state (unless the
   * client's `since` is current), then the changes that arrived while the state was being read.
   */
  async subscribe (conn: SyncConnection, frame: SubscribeFrame): Promise<void> {
    const { id } = frame
    // Shared with the channel's other subscribers when it has some (registry.channelOf).
    const channel = this.registry.channelOf(frame.channel) ?? parseChannel(frame.channel)
    const name = channel?.name ?? frame.channel
    if (!channel) {
      conn.error(ErrorCode.unknownChannel, `no channel named ${name}`, id, name)
      return
    }
    const access = readAccess(channel, conn.user)
    if (access !== 'ok') {
      conn.error(access, access === 'unauthorized' ? 'this channel needs a token' : "another user's channel", id, name)
      return
    }
    if (!conn.subs.has(name) && conn.subs.size >= this.maxSubscriptions) {
      conn.error(ErrorCode.tooManySubscriptions, `at most ${this.maxSubscriptions} subscriptions per connection`, id, name)
      return
    }

    // Subscribed from now on, so no change is missed while the state is read; changes wait in
    // the subscription until the state has been sent. A repeat subscribe starts over (a resync).
    const sub = new Subscription(channel)
    conn.subs.set(name, sub)
    conn.forget(name)
    this.registry.join(name, conn, sub)
    const wanted = () => conn.subs.get(name) === sub && !conn.closing

    let outcome: SinceOutcome
    let waited
    if (channel.kind === 'presence') {
      // Nothing to read: the total is held here, and counts this connection from now on.
      this.presence.join(conn)
      conn.send({ type: 'subscribed', ...withId(id), channel: name, version: null })
      conn.push(makeBroadcast(name, 'snapshot', null, this.presence.total))
      outcome = 'none'
      waited = sub.sent({ readSeq: this.presence.seq, items: null })
    } else if (isWholeChannel(channel)) {
      const result = await this.readWhile(() => this.whole.snapshot(channel), wanted, { channel: name })
      if (!result || !wanted()) return
      conn.send({ type: 'subscribed', ...withId(id), channel: name, version: null })
      conn.push(makeBroadcast(name, 'snapshot', null, result.data))
      outcome = 'none'
      const items = channel.kind === 'logos' ? new Map((result.data as Logo[]).map((l) => [l._id, l.version])) : null
      waited = sub.sent({ readSeq: result.seq, items })
    } else {
      const state = await this.readWhile(() => this.reads.versioned(channel), wanted, { channel: name })
      if (!state || !wanted()) return
      conn.send({ type: 'subscribed', ...withId(id), channel: name, version: state.version })
      const since = frame.since ?? null
      if (state.version !== null && since !== null && since >= state.version) {
        outcome = 'current'
      } else {
        conn.push(makeBroadcast(name, state.type, state.version, state.data))
        outcome = since === null ? 'none' : 'stale'
      }
      waited = sub.sent({ version: state.version })
    }
    this.stats.resync(outcome)
    for (const b of waited) conn.push(b)
  }

  unsubscribe (conn: SyncConnection, name: string, id?: RequestId): void {
    if (!parseChannel(name)) {
      conn.error(ErrorCode.unknownChannel, `no channel named ${name}`, id, name)
      return
    }
    this.drop(conn, name)
    conn.send({ type: 'unsubscribed', ...withId(id), channel: name })
  }

  /** The connection's user changed: drops (with a `forbidden` error each) what it may no longer read. */
  revoke (conn: SyncConnection): void {
    if (conn.subscriptionCount === 0) return
    for (const [name, sub] of conn.subs) {
      if (readAccess(sub.channel, conn.user) === 'ok') continue
      this.drop(conn, name)
      conn.error(ErrorCode.forbidden, 'the new token may not read this channel', undefined, name)
    }
  }

  /** The connection went away: leaves every channel. */
  leaveAll (conn: SyncConnection): void {
    if (conn.subscriptionCount === 0) return
    for (const name of conn.subs.keys()) this.leave(name, conn)
    conn.subs.clear()
  }

  /** Removes a subscription without answering. */
  private drop (conn: SyncConnection, name: string): void {
    if (!conn.subs.delete(name)) return
    this.leave(name, conn)
    conn.forget(name)
  }

  private leave (name: string, conn: SyncConnection): void {
    if (name === PRESENCE_CHANNEL) this.presence.leave(conn)
    if (this.registry.leave(name, conn)) this.whole.release(name)
  }

  /** Re-reads `users.<sub>.votes` (every local one when sub is omitted) and pushes it. */
  refreshUserVotes (sub?: string): void {
    this.whole.refreshUserVotes(sub)
  }

  /** Re-reads the `users.<sub>.votes` that may hold a deleted logo (whole-channel.ts). */
  refreshUserVotesHolding (logoId: string): void {
    this.whole.refreshUserVotesHolding(logoId)
  }

  /**
   * After a bus gap: re-reads every channel with local subscribers and pushes it where it moved
   * (versioned channels only reach clients holding an older version; whole channels go whole).
   */
  rereadAll (): void {
    if (this.closed) return
    for (const name of this.registry.names()) {
      const channel = parseChannel(name)
      // Presence is not on the bus: its views come from the presence backend.
      if (!channel || channel.kind === 'presence') continue
      if (isWholeChannel(channel)) this.whole.refresh(channel)
      else void this.rereadVersioned(channel)
    }
  }

  private async rereadVersioned (channel: VersionedChannel): Promise<void> {
    const state = await this.readWhile(() => this.reads.versioned(channel), () => this.has(channel.name), { channel: channel.name })
    if (!state) return
    this.broadcast(channel.name, state.type === 'snapshot' ? 'updated' : 'deleted', state.version, state.data)
  }

  /** Retries a read with backoff while `wanted()` holds (a store blip must not lose a subscribe). */
  private async readWhile<T> (read: () => Promise<T>, wanted: () => boolean, what: object): Promise<T | undefined> {
    let delay = 250
    for (;;) {
      try {
        return await read()
      } catch (err) {
        if (!wanted() || this.closed) return undefined
        this.warn({ err, ...what, retryInMs: delay }, 'sync read failed; retrying')
        await sleep(delay)
        if (!wanted() || this.closed) return undefined
        delay = Math.min(delay * 2, 5000)
      }
    }
  }

  /** Stops the whole-channel readers and every pending retry (idempotent). */
  close (): void {
    this.closed = true
    this.whole.close()
  }
}
