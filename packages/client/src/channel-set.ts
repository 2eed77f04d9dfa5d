// The channels a client holds: their last state, who listens, and whether a subscription for
// each is on the wire. One wire subscription per channel however many listeners share it;
// every (re)connect subscribes again with `since` = the version held. What listeners see is the
// server's state with an optimistic mutation on top, if one is out; a channel nothing has used
// for `ttlMs` is forgotten.
import type { ChannelFrame, ClientFrame, ErrorFrame, ServerFrame, SubscribedFrame } from './protocol.js'
import { channelRef, type ChannelRef } from './channels.js'
import { isWholeChannel } from './protocol.js'
import { applyIncoming, createListMemo, keepEqual, pendingState, resetLiveMemo, type Incoming, type ListMemo } from './store.js'
import { SyncError, type ChannelEvent, type ChannelState } from './types.js'

export type Callback = (data: unknown, event: ChannelEvent) => void

export interface ChannelEntry {
  readonly name: string
  readonly ref: ChannelRef
  /** The server's state (wire, REST, a vote's own result), without any optimistic data. */
  state: ChannelState
  /** The latest optimistic mutation's data, shown instead of `state.data` until it settles. */
  optimistic?: { data: unknown, seq: number }
  /** What listeners see (view()), kept while its parts stay the same. */
  view?: { state: ChannelState, base: ChannelState, optimistic: ChannelEntry['optimistic'], validating: boolean }
  /** The REST read in flight, shared by everyone who asks meanwhile. */
  validating?: Promise<void>
  /** The error of the last REST read, while it is the state's error (the next good read clears it). */
  restError?: SyncError | null
  /** LogoSyncClient.ready's promise while the channel has no state yet. */
  ready?: Promise<void>
  /** Mutations and polls holding the channel (it is not forgotten while any does). */
  holds: number
  /** When it was last left unused (for the ttl). */
  idleAt: number
  readonly memo: ListMemo
  readonly callbacks: Set<Callback>
  readonly watchers: Set<() => void>
  /** Whether a `subscribe` for this channel is live (or in flight) on the current socket. */
  wired: boolean
  /**
   * Channel frames received from the wire so far. A REST read without a version compares it
   * before and after, to tell whether the socket sent state while it was in flight (see
   * LogoSyncClient.revalidate).
   */
  wireFrames: number
  unsubscribeTimer?: ReturnType<typeof setTimeout>
  /** A subscribe the server dropped over its rate limit, sent again when this fires. */
  retryTimer?: ReturnType<typeof setTimeout>
}

/** What the channel set needs from the connection. */
export interface Wire {
  /** True once the server said `welcome` on the current socket. */
  ready (): boolean
  send (frame: ClientFrame): boolean
  nextId (): number
  /** The server refused frames as too many: send slower. */
  slowDown (): void
  error (err: SyncError): void
}

const CHANNEL_FRAME_TYPES = new Set<string>(['snapshot', 'created', 'updated', 'deleted', 'votes'])
/** A subscribe refused as `rate_limited` is tried again after this long. */
const RETRY_RATE_LIMITED_MS = 1_000
const MAX_PRESUMED_DROPPED = 1_000

export class ChannelSet {
  private readonly entries = new Map<string, ChannelEntry>()
  /** Subscribe request id → channel, to route `error` frames; removed once answered. */
  private readonly requests = new Map<number, string>()
  /**
   * Subscribes still unanswered when the server said `rate_limited` without naming a request:
   * presumed dropped and sent again later, unless an answer shows they got through after all.
   */
  private readonly presumedDropped = new Map<number, string>()

  private sweepTimer: ReturnType<typeof setTimeout> | undefined

  constructor (private readonly wire: Wire, private readonly unsubscribeDelayMs: number, private readonly ttlMs: number) {}

  entry (name: string): ChannelEntry {
    let entry = this.entries.get(name)
    if (!entry) {
      entry = { name, ref: channelRef(name), state: pendingState, memo: createListMemo(), callbacks: new Set(), watchers: new Set(), wired: false, wireFrames: 0, holds: 0, idleAt: 0 }
      this.entries.set(name, entry)
      this.idle(entry)
    }
    return entry
  }

  get (name: string): ChannelEntry | undefined { return this.entries.get(name) }

  get wiredChannels (): string[] {
    return [...this.entries.values()].filter((e) => e.wired).map((e) => e.name)
  }

  get names (): string[] { return [...this.entries.keys()] }

  refs (entry: ChannelEntry): number { return entry.callbacks.size + entry.watchers.size }

  /** A listener arrived: make sure the channel is subscribed on the wire. */
  retain (entry: ChannelEntry): void {
    clearTimeout(entry.unsubscribeTimer)
    entry.unsubscribeTimer = undefined
    if (!entry.wired) this.subscribe(entry)
  }

  /** A listener left: after a short grace (React remounts, a card replaced by its twin) unsubscribe if it was the last. */
  release (entry: ChannelEntry): void {
    if (this.refs(entry) > 0) return
    if (!entry.wired) return this.idle(entry)
    clearTimeout(entry.unsubscribeTimer)
    entry.unsubscribeTimer = setTimeout(() => {
      entry.unsubscribeTimer = undefined
      if (this.refs(entry) > 0 || !entry.wired) return
      entry.wired = false
      this.wire.send({ op: 'unsubscribe', channel: entry.name, id: this.wire.nextId() })
      this.idle(entry)
    }, this.unsubscribeDelayMs)
  }

  /** Something that is not a listener (a mutation, a poll, a REST read) holds the channel, until the returned function is called. */
  hold (entry: ChannelEntry): () => void {
    entry.holds++
    let held = true
    return () => {
      if (!held) return
      held = false
      entry.holds--
      this.idle(entry)
    }
  }

  private unused (entry: ChannelEntry): boolean {
    return this.refs(entry) === 0 && entry.holds === 0 && !entry.wired && !entry.unsubscribeTimer && !entry.retryTimer
  }

  /** The channel may have become unused: forget it after ttlMs unless something uses it meanwhile. */
  private idle (entry: ChannelEntry): void {
    if (!this.unused(entry)) return
    entry.idleAt = Date.now()
    this.sweepTimer ??= unref(setTimeout(() => this.sweep(), this.ttlMs))
  }

  private sweep (): void {
    this.sweepTimer = undefined
    const now = Date.now()
    let next = Infinity
    for (const entry of this.entries.values()) {
      if (!this.unused(entry)) continue
      const due = entry.idleAt + this.ttlMs
      if (due <= now) this.entries.delete(entry.name)
      else next = Math.min(next, due)
    }
    if (next < Infinity) this.sweepTimer = unref(setTimeout(() => this.sweep(), next - now))
  }

  /** Subscribes on the wire, with `since` when a version is held (the server then sends state only if it moved). */
  subscribe (entry: ChannelEntry): void {
    if (!this.wire.ready()) return
    const id = this.wire.nextId()
    const { state } = entry
    const since = !isWholeChannel(entry.ref) && state.status !== 'pending' && state.version !== null ? state.version : undefined
    if (entry.ref.kind === 'logos') resetLiveMemo(entry.memo)
    if (this.wire.send({ op: 'subscribe', channel: entry.name, id, ...(since !== undefined ? { since } : {}) })) {
      entry.wired = true
      this.requests.set(id, entry.name)
    }
  }

  /**
   * After `welcome`: every channel someone listens to goes on the new socket, once (a listener
   * of `welcome` or `user` may have subscribed a channel already; socketDown unwired the rest).
   */
  subscribeAll (): void {
    for (const entry of this.entries.values()) {
      if (this.refs(entry) > 0 && !entry.wired) this.subscribe(entry)
    }
  }

  /** Channels refused for want of rights, tried again (after a new token). */
  retryRefused (): void {
    for (const entry of this.entries.values()) {
      const code = entry.state.error?.code
      if (this.refs(entry) > 0 && !entry.wired && (code === 'forbidden' || code === 'unauthorized')) this.subscribe(entry)
    }
  }

  /** The socket is gone: nothing is on the wire any more. */
  socketDown (): void {
    this.requests.clear()
    this.presumedDropped.clear()
    for (const entry of this.entries.values()) {
      entry.wired = false
      // subscribeAll on the next welcome covers a pending rate-limit retry.
      clearTimeout(entry.retryTimer)
      entry.retryTimer = undefined
      // What arrived live on the lost socket must not outlive it: a REST poll during the outage
      // would otherwise bring back a logo created live and deleted while the client was offline.
      if (entry.ref.kind === 'logos') resetLiveMemo(entry.memo)
      clearTimeout(entry.unsubscribeTimer)
      entry.unsubscribeTimer = undefined
      this.idle(entry)
    }
  }

  close (): void {
    clearTimeout(this.sweepTimer)
    for (const entry of this.entries.values()) {
      clearTimeout(entry.unsubscribeTimer)
      clearTimeout(entry.retryTimer)
    }
  }

  /** Routes a frame from the server. */
  receive (frame: ServerFrame): void {
    if ('channel' in frame && CHANNEL_FRAME_TYPES.has(frame.type)) {
      const f = frame as ChannelFrame
      const entry = this.entries.get(f.channel)
      if (entry) {
        entry.wireFrames++
        this.apply(entry, f, f.type)
      }
      return
    }
    if (frame.type === 'subscribed') this.subscribed(frame)
    else if (frame.type === 'error') this.refused(frame)
  }

  private subscribed (frame: SubscribedFrame): void {
    const id = frame.id as number | undefined
    if (id !== undefined) this.requests.delete(id)
    const entry = this.entries.get(frame.channel)
    if (id !== undefined && this.presumedDropped.delete(id) && entry && !entry.wired) {
      // Presumed dropped over the rate limit, but it got through: it is on the wire.
      clearTimeout(entry.retryTimer)
      entry.retryTimer = undefined
      if (this.refs(entry) > 0) {
        entry.wired = true
      } else {
        this.wire.send({ op: 'unsubscribe', channel: entry.name, id: this.wire.nextId() })
      }
    }
    if (entry?.state.error) this.setState(entry, { ...entry.state, error: null }, null)
  }

  private refused (frame: ErrorFrame): void {
    const id = frame.id as number | undefined
    const requested = id !== undefined ? this.requests.get(id) ?? this.presumedDropped.get(id) : undefined
    if (id !== undefined) {
      this.requests.delete(id)
      this.presumedDropped.delete(id)
    }
    const channel = requested ?? frame.channel
    const error = new SyncError(frame.message, frame.code, { channel })
    if (frame.code === 'rate_limited') this.wire.slowDown()
    if (frame.code === 'rate_limited' && id === undefined && channel === undefined) {
      // The server drops frames over its limit and answers only the first drop in a second,
      // naming no request: any subscribe not answered yet may have been dropped.
      this.retryUnanswered()
    }
    const entry = channel ? this.entries.get(channel) : undefined
    // A refused subscribe (or a subscription the server dropped on its own) is not on the wire.
    if (entry && (requested !== undefined || id === undefined)) {
      entry.wired = false
      clearTimeout(entry.retryTimer)
      entry.retryTimer = undefined
      if (frame.code === 'rate_limited') {
        this.retryLater(entry)
      } else {
        this.setState(entry, { ...entry.state, error }, null)
      }
    }
    this.wire.error(error)
  }

  /** Every subscribe still unanswered is presumed dropped: not on the wire, sent again later. */
  private retryUnanswered (): void {
    for (const [id, name] of this.requests) {
      this.requests.delete(id)
      const entry = this.entries.get(name)
      if (!entry?.wired) continue
      this.presumedDropped.set(id, name)
      // Truly dropped ones are never answered: keep the newest few (the map lives as long as the socket).
      if (this.presumedDropped.size > MAX_PRESUMED_DROPPED) this.presumedDropped.delete(this.presumedDropped.keys().next().value!)
      entry.wired = false
      this.retryLater(entry)
    }
  }

  private retryLater (entry: ChannelEntry): void {
    clearTimeout(entry.retryTimer)
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined
      if (this.refs(entry) > 0 && !entry.wired) this.subscribe(entry)
      this.idle(entry)
    }, RETRY_RATE_LIMITED_MS)
  }

  /** Applies state from the wire, REST or a vote's own result; callbacks hear of real changes only. */
  apply (entry: ChannelEntry, incoming: Incoming, type: ChannelEvent['type']): void {
    const next = applyIncoming(entry.ref, entry.state, incoming, entry.memo)
    if (next) this.setState(entry, next, { channel: entry.name, type, version: incoming.version })
  }

  /** Sets the server's state; data deep-equal to what is held keeps its identity. */
  setState (entry: ChannelEntry, state: ChannelState, event: ChannelEvent | null): void {
    const before = this.view(entry)
    const data = keepEqual(entry.state.data, state.data)
    entry.state = data === state.data ? state : { ...state, data }
    this.changed(entry, before, event)
  }

  /** Changes what listeners see without touching the server's state (optimistic data, `validating`). */
  overlay (entry: ChannelEntry, change: (entry: ChannelEntry) => void, event: ChannelEvent | null): void {
    const before = this.view(entry)
    change(entry)
    this.changed(entry, before, event)
  }

  /** What listeners see: the server's state, with optimistic data and `validating` on top. */
  view (entry: ChannelEntry): ChannelState {
    const { state: base, optimistic } = entry
    const validating = !!entry.validating
    if (!optimistic && !validating) return base
    const v = entry.view
    if (v && v.base === base && v.optimistic === optimistic && v.validating === validating) return v.state
    const state: ChannelState = optimistic ? { ...base, data: optimistic.data, status: 'ready', validating } : { ...base, validating }
    entry.view = { state, base, optimistic, validating }
    return state
  }

  private changed (entry: ChannelEntry, before: ChannelState, event: ChannelEvent | null): void {
    const after = this.view(entry)
    if (after === before) return
    if (event && (after.data !== before.data || after.version !== before.version || after.status !== before.status)) {
      for (const cb of [...entry.callbacks]) cb(after.data, event)
    }
    for (const watcher of [...entry.watchers]) watcher()
  }
}

const unref = <T> (timer: T): T => {
  (timer as { unref?: () => void }).unref?.()
  return timer
}
