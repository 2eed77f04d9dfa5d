// One /sync connection: who it is, what it is subscribed to, and how frames reach its socket
// (inbound rate limit, outbound backpressure with a backlog of superseded-away state).
import { randomUUID } from 'node:crypto'
import type { WebSocket } from 'ws'
import type { Principal } from '../domain.js'
import { CloseCode, type ErrorCode, type RequestId, type ServerFrame } from '../protocol.js'
import { filterVotesBatch, keepNewer, listVotesKey, wsFrameOf, type Broadcast } from './broadcast.js'
import { encodeFrame, withId } from './frames.js'
import type { SyncStats } from './stats.js'
import type { Subscription } from './subscription.js'

export interface ConnectionLimits {
  /** Inbound frames per second (SYNC_RATE_LIMIT). */
  rateLimit: number
  /** Outbound bytes queued on the socket before changes are held back (SYNC_MAX_BUFFER_BYTES). */
  maxBufferBytes: number
  /** How long changes may stay held back before the client is closed with 4009. */
  slowConsumerMs: number
}

export type Admission = 'ok' | 'limited' | 'drop' | 'close'

/** setTimeout's ceiling (~24.8 days); longer token lifetimes are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** ws send options for every frame (one object, not one per frame). */
const TEXT = { binary: false } as const

/** The part of ws's per-socket Sender (not declared by @types/ws) that writes a finished frame. */
interface FrameSender { sendFrame (list: readonly Buffer[], cb?: () => void): void }
/** Consecutive malformed frames after which a connection is closed. */
export const MAX_BAD_FRAMES = 10

export class SyncConnection {
  readonly id = randomUUID()
  /** performance.now() at open, for the connection's duration in the close log line. */
  readonly openedAt = performance.now()
  user: Principal | null = null
  /** An identity change (handshake token, auth op) still being verified; later frames wait for it. */
  identityPending: Promise<void> | null = null
  /** Created at the first subscribe: an idle connection (most, at 10,000s) holds no Map. */
  private subsByName: Map<string, Subscription> | null = null
  /** Cleared on every server ping, set by the pong (or any frame). */
  alive = true
  /** When the last server ping went out (performance.now(): a wall-clock step must not matter; 0: never). */
  pingedAt = 0
  closing = false
  /** The code this side closed with (reported instead of the peer's echo). */
  closeCode: number | undefined
  /**
   * When the client fell behind: its socket went over SYNC_MAX_BUFFER_BYTES or changes started
   * being held back; 0 while it keeps up. Only catching up resets it (drain), never anything the
   * client sends or asks for: a client that does not read is closed with 4009 whatever it says.
   */
  backlogSince = 0
  /** Held-back changes, created the first time a client falls behind (most never do). */
  private backlog: Map<string, Broadcast> | null = null
  // The inbound rate window, as plain fields: kept on every one of up to 10,000s of connections.
  private windowStart = 0
  private windowCount = 0
  private overStreak = 0
  private badFrames = 0
  private expiryTimer: NodeJS.Timeout | undefined

  constructor (
    readonly socket: WebSocket,
    private readonly limits: ConnectionLimits,
    private readonly stats: SyncStats,
    /** Called when the connection starts holding changes back (the hub then drains it). */
    private readonly onBehind: (conn: SyncConnection) => void
  ) {
    // Without permessage-deflate (plugins/sync.ts turns it off; fixed at the handshake) ws's
    // Sender writes frames to the socket as they come, so a finished frame can be written in order
    // with everything else. Read once: ws's `extensions` getter builds a string at every call.
    this.frameSender = socket.extensions === '' ? (socket as unknown as { _sender?: FrameSender })._sender : undefined
  }

  /** ws's Sender, when a broadcast's finished frame can be written to it as it is (see the constructor). */
  private readonly frameSender: FrameSender | undefined

  /** By channel name; managed by Subscriptions (subscriptions.ts). */
  get subs (): Map<string, Subscription> {
    this.subsByName ??= new Map()
    return this.subsByName
  }

  /** How many channels it is subscribed to (without creating the Map). */
  get subscriptionCount (): number {
    return this.subsByName?.size ?? 0
  }

  get isOpen (): boolean {
    return !this.closing && this.socket.readyState === this.socket.OPEN
  }

  /** Control frames (welcome, subscribed, errors, pong...) go straight out. */
  send (frame: ServerFrame): void {
    this.write(encodeFrame(frame), frame.type)
  }

  /** An `error` frame (counted by code); `id` echoes the request it answers, if any. */
  error (code: ErrorCode, message: string, id?: RequestId, channel?: string): void {
    this.stats.error(code)
    this.send({ type: 'error', ...withId(id), ...(channel === undefined ? {} : { channel }), code, message })
  }

  /** Writes a frame; a broadcast (`b`) goes out as its shared, already built WebSocket frame. */
  private write (bytes: Buffer, type: string, b?: Broadcast): void {
    if (!this.isOpen) return
    if (b !== undefined && this.frameSender !== undefined) this.frameSender.sendFrame(wsFrameOf(b))
    else this.socket.send(bytes, TEXT)
    this.stats.frameOut(type, bytes.length)
    // Replies (subscribed, pong, errors) go straight out: they too can put a socket that is not
    // being read over its buffer, and start the clock.
    if (this.backlogSince === 0 && this.socket.bufferedAmount > this.limits.maxBufferBytes) this.fallBehind()
  }

  private fallBehind (): void {
    this.backlogSince = Date.now()
    this.onBehind(this)
  }

  /**
   * A change on a subscribed channel: goes out (or into the backlog) if the subscription says
   * the client still needs it (subscription.ts). The fan-out passes the subscription it holds in
   * the channel registry.
   */
  deliver (b: Broadcast, sub: Subscription | undefined = this.subsByName?.get(b.channel)): void {
    const needed = sub?.accept(b)
    if (needed) this.push(needed)
  }

  /** Sends a channel frame now, or holds it back if the client is behind. */
  push (b: Broadcast): void {
    if ((this.backlog !== null && this.backlog.size > 0) || this.socket.bufferedAmount > this.limits.maxBufferBytes) {
      this.holdBack(b)
      return
    }
    this.write(b.bytes, b.type, b)
  }

  private holdBack (b: Broadcast): void {
    const backlog = this.backlog ??= new Map()
    if (this.backlogSince === 0) this.fallBehind()
    if (b.type === 'snapshot') {
      // A snapshot replaces everything held for its channel.
      for (const [key, held] of backlog) {
        if (held.channel === b.channel) { backlog.delete(key); this.stats.superseded++ }
      }
    }
    const held = backlog.get(b.key)
    if (held) {
      backlog.delete(held.key)
      b = keepNewer(held, b)
      if (b.type !== 'votes') this.stats.superseded++
    }
    if (b.itemId !== undefined && b.version !== null) {
      // A whole item supersedes held vote counts for it that are not newer.
      const batch = backlog.get(listVotesKey(b.channel))
      if (batch) {
        const version = b.version
        const kept = filterVotesBatch(batch, (id, v) => id !== b.itemId || v > version)
        if (kept !== batch) {
          backlog.delete(batch.key)
          if (kept) backlog.set(kept.key, kept)
        }
      }
    }
    backlog.set(b.key, b)
  }

  /**
   * Sends held-back changes while the socket has room. 'drained' only when nothing is held back
   * and the socket is under its buffer again; 'slow' when the client has been behind for longer
   * than allowed (the caller closes it with 4009).
   */
  drain (now = Date.now()): 'drained' | 'behind' | 'slow' {
    if (this.backlog !== null) {
      for (const [key, b] of this.backlog) {
        if (this.socket.bufferedAmount > this.limits.maxBufferBytes) break
        this.backlog.delete(key)
        this.write(b.bytes, b.type, b)
      }
      if (this.backlog.size === 0) this.backlog = null
    }
    if (this.backlog === null && this.socket.bufferedAmount <= this.limits.maxBufferBytes) {
      this.backlogSince = 0
      return 'drained'
    }
    return now - this.backlogSince > this.limits.slowConsumerMs ? 'slow' : 'behind'
  }

  /**
   * Forgets held-back changes of a channel the client left or subscribes to again. The clock
   * keeps running: a client re-subscribing must not look like one that caught up.
   */
  forget (channel: string): void {
    if (this.backlog === null) return
    for (const [key, b] of this.backlog) if (b.channel === channel) this.backlog.delete(key)
  }

  /**
   * Inbound rate limit, per one-second window: over SYNC_RATE_LIMIT a frame is dropped (the
   * first drop in a window answers `rate_limited`); at twice the limit in one window, or over it
   * for three windows running, the connection is closed with 4008.
   */
  admit (now = Date.now()): Admission {
    this.alive = true
    if (now - this.windowStart >= 1000) {
      const over = this.windowCount > this.limits.rateLimit
      this.overStreak = over && now - this.windowStart < 2000 ? this.overStreak + 1 : 0
      this.windowStart = now
      this.windowCount = 0
    }
    const count = ++this.windowCount
    const limit = this.limits.rateLimit
    if (count <= limit) return 'ok'
    if (count > 2 * limit || this.overStreak >= 2) return 'close'
    return count === limit + 1 ? 'limited' : 'drop'
  }

  /** Counts malformed frames in a row; true when the client keeps sending garbage. */
  badFrame (): boolean {
    return ++this.badFrames >= MAX_BAD_FRAMES
  }

  goodFrame (): void {
    this.badFrames = 0
  }

  /** Sets who the connection acts as; closes it with 4001 when the token expires. */
  setUser (user: Principal, onExpired: () => void): void {
    clearTimeout(this.expiryTimer)
    this.expiryTimer = undefined
    this.user = user
    if (typeof user.exp !== 'number') return
    const arm = () => {
      const left = user.exp! * 1000 - Date.now()
      if (left <= 0) { onExpired(); return }
      this.expiryTimer = setTimeout(arm, Math.min(left, MAX_TIMER_MS))
      this.expiryTimer.unref()
    }
    arm()
  }

  close (code: CloseCode | number, reason: string): void {
    if (this.closing) return
    this.closing = true
    this.closeCode = code
    this.dispose()
    try {
      this.socket.close(code, reason)
    } catch {
      this.socket.terminate()
    }
  }

  /** Stops timers and drops held state; the socket may still be closing. */
  dispose (): void {
    clearTimeout(this.expiryTimer)
    this.expiryTimer = undefined
    this.backlog = null
    this.backlogSince = 0
  }
}

export { CloseCode }
