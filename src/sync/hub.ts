// The sync hub: local subscribers per channel, the ops of the /sync protocol, fanout of bus
// changes, resync after a bus gap, heartbeats, slow consumers and shutdown. Transport-agnostic:
// it gets `ws` sockets and already validated frames from routes/sync.ts.
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import type { AuthUser } from '../../plugins/auth.js'
import type { BusMessage } from '../bus/types.js'
import { CloseCode, ErrorCode, type ClientFrame, type RequestId } from '../protocol.js'
import { makeBroadcast } from './broadcast.js'
import { isWholeChannel, parseChannel, readAccess, type Channel } from './channels.js'
import { SyncConnection, type ConnectionLimits } from './connection.js'
import { Liveness } from './liveness.js'
import { ChannelRegistry } from './registry.js'
import { ChangeFeed, type BroadcastOptions } from './feed.js'
import type { ParsedFrame } from './frames.js'
import { readList, readVersioned, type SyncReads } from './snapshots.js'
import { SyncStats } from './stats.js'
import { subscribe, withId } from './subscribe.js'
import { WholeChannels } from './whole-channel.js'

export interface HubLimits extends ConnectionLimits {
  maxSubscriptions: number
  conflateMs: number
  heartbeatMs: number
}

export interface HubOptions {
  reads: SyncReads
  verifyToken: (token: string) => AuthUser & { exp?: number }
  limits: HubLimits
  log: FastifyBaseLogger
}

const sleep = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms).unref() })

export class SyncHub {
  readonly stats = new SyncStats()
  readonly feed: ChangeFeed
  readonly reads: SyncReads
  readonly limits: HubLimits
  readonly log: FastifyBaseLogger
  readonly registry: ChannelRegistry
  private readonly connections = new Set<SyncConnection>()
  private readonly liveness: Liveness
  readonly whole: WholeChannels
  private readonly verifyToken: HubOptions['verifyToken']
  closing = false

  constructor (opts: HubOptions) {
    this.reads = opts.reads
    this.limits = opts.limits
    this.log = opts.log
    this.verifyToken = opts.verifyToken
    this.feed = new ChangeFeed({
      has: (channel) => this.has(channel),
      broadcast: (channel, type, version, data, o) => this.broadcast(channel, type, version, data, o),
      refreshUserVotes: (sub) => this.whole.refreshUserVotes(sub),
      getLogo: (id) => this.reads.getLogo(id),
      warn: (obj, msg) => this.log.warn(obj, msg)
    }, opts.limits.conflateMs)
    this.whole = new WholeChannels({
      readList: () => readList(this.reads, this.feed),
      readUserVotes: (sub) => this.reads.userVotes(sub),
      push: (channel, type, data, readSeq) => this.broadcast(channel, type, null, data, { readSeq }),
      warn: (obj, msg) => this.log.warn(obj, msg)
    })
    this.registry = new ChannelRegistry(this.stats)
    this.liveness = new Liveness(this.connections, opts.limits.heartbeatMs)
  }

  /** Bus handler: every replica's changes, this one's included. */
  readonly onBusMessage = (message: BusMessage): void => {
    try {
      this.feed.handle(message)
    } catch (err) {
      this.log.error({ err, event: message.event.kind }, 'sync fanout failed')
    }
  }

  has (channel: string): boolean {
    return this.registry.has(channel)
  }

  /** Serialises a change once and hands the same bytes to every local subscriber. */
  broadcast (channel: string, type: Parameters<typeof makeBroadcast>[1], version: number | null, data: unknown, opts: BroadcastOptions & { readSeq?: number } = {}): void {
    const subscribers = this.registry.subscribers(channel)
    if (!subscribers || subscribers.size === 0) return
    const { publishedAt, ...rest } = opts
    const b = makeBroadcast(channel, type, version, data, rest)
    const started = performance.now()
    for (const conn of subscribers) conn.deliver(b)
    this.stats.fanout((performance.now() - started) / 1000, subscribers.size)
    if (publishedAt !== undefined) this.stats.delivery(Math.max(0, Date.now() - publishedAt) / 1000)
  }

  // --- connections --------------------------------------------------------------------------

  /** A new socket: authenticate from the handshake token (if any), then welcome it. */
  connect (socket: WebSocket, token: string | null): SyncConnection {
    const conn = new SyncConnection(socket, this.limits, this.stats, this.watchBehind)
    if (this.closing) {
      conn.close(CloseCode.goingAway, 'server shutting down')
      return conn
    }
    this.connections.add(conn)
    this.stats.connection(true)
    socket.on('close', (code: number) => this.disconnected(conn, code))
    socket.on('pong', () => { conn.alive = true })
    let user: (AuthUser & { exp?: number }) | null = null
    if (token !== null) {
      try {
        user = this.verifyToken(token)
      } catch {
        this.error(conn, ErrorCode.unauthorized, 'token is invalid or expired')
        conn.close(CloseCode.unauthorized, 'invalid token')
        return conn
      }
    }
    this.log.debug({ connectionId: conn.id, user: user?.sub ?? null, role: user?.role ?? null }, 'sync connection opened')
    conn.send({
      type: 'welcome',
      connectionId: conn.id,
      serverTime: new Date().toISOString(),
      user: user ? { sub: user.sub, role: user.role } : null,
      heartbeatMs: this.limits.heartbeatMs
    })
    if (user) this.identify(conn, user)
    return conn
  }

  /** One function for every connection (not a closure each): a connection fell behind. */
  private readonly watchBehind = (conn: SyncConnection): void => { this.liveness.watch(conn) }

  /**
   * An 'error' on a connection's socket. While it is open the fault is ours: log it and close
   * with 1011. Otherwise ws is already closing over a client's protocol error (1009 frame too
   * big, 1007 bad UTF-8) and stops reading before the client's echo arrives, so the close event
   * would say 1006: remember the code ws sent instead, and keep it out of the error log.
   */
  socketError (conn: SyncConnection, err: Error): void {
    if (conn.socket.readyState === conn.socket.OPEN) {
      this.log.error({ err, connectionId: conn.id }, 'sync connection failed')
      conn.close(1011, 'internal error')
      return
    }
    const status = Object.getOwnPropertySymbols(err).find((k) => k.description === 'status-code')
    const code = status ? (err as unknown as Record<symbol, unknown>)[status] : undefined
    if (typeof code === 'number') conn.closeCode ??= code
    this.log.debug({ err, connectionId: conn.id }, 'sync client protocol error')
  }

  private disconnected (conn: SyncConnection, code: number): void {
    if (!this.connections.delete(conn)) return
    conn.dispose()
    for (const name of conn.subs.keys()) this.leave(name, conn)
    conn.subs.clear()
    this.liveness.forget(conn)
    this.stats.connection(false)
    this.stats.disconnect(conn.closeCode ?? code)
    this.log.debug({ connectionId: conn.id, user: conn.user?.sub ?? null, code: conn.closeCode ?? code, durationMs: Math.round(performance.now() - conn.openedAt) }, 'sync connection closed')
  }

  /** Inbound rate limit; false means drop the frame (and maybe the connection). */
  admit (conn: SyncConnection): boolean {
    if (conn.closing) return false
    const admission = conn.admit()
    if (admission === 'ok') return true
    this.stats.limited()
    if (admission === 'limited') this.error(conn, ErrorCode.rateLimited, `more than ${this.limits.rateLimit} frames per second; frames are being dropped`)
    if (admission === 'close') conn.close(CloseCode.rateLimited, 'rate limit exceeded')
    return false
  }

  /** A frame that failed parsing or validation. */
  reject (conn: SyncConnection, failure: Extract<ParsedFrame, { ok: false }>): void {
    this.stats.frameIn('invalid')
    this.error(conn, ErrorCode.badRequest, failure.message, failure.id)
    // 1008 (policy violation): the standard code for a peer that keeps breaking the protocol.
    if (conn.badFrame()) conn.close(CloseCode.policyViolation, 'too many malformed frames')
  }

  async handle (conn: SyncConnection, frame: ClientFrame): Promise<void> {
    if (conn.closing || this.closing) return
    this.stats.frameIn(frame.op)
    conn.goodFrame()
    switch (frame.op) {
      case 'ping':
        conn.send({ type: 'pong', ...withId(frame.id), serverTime: new Date().toISOString() })
        return
      case 'auth':
        this.authenticate(conn, frame.token, frame.id)
        return
      case 'unsubscribe':
        this.unsubscribe(conn, frame.channel, frame.id)
        return
      case 'subscribe':
        await subscribe(this, conn, frame)
    }
  }

  error (conn: SyncConnection, code: ErrorCode, message: string, id?: RequestId, channel?: string): void {
    this.stats.error(code)
    conn.send({ type: 'error', ...withId(id), ...(channel === undefined ? {} : { channel }), code, message })
  }

  private authenticate (conn: SyncConnection, token: string, id?: RequestId): void {
    let user: AuthUser & { exp?: number }
    try {
      user = this.verifyToken(token)
    } catch {
      // The connection keeps the identity it had; only its own token expiring closes it.
      this.error(conn, ErrorCode.unauthorized, 'token is invalid or expired', id)
      return
    }
    this.identify(conn, user)
    conn.send({
      type: 'authenticated',
      ...withId(id),
      user: { sub: user.sub, role: user.role },
      expiresAt: typeof user.exp === 'number' ? new Date(user.exp * 1000).toISOString() : null
    })
  }

  /** Sets the connection's user; drops private subscriptions the new user may not read. */
  private identify (conn: SyncConnection, user: AuthUser & { exp?: number }): void {
    conn.setUser(user, () => {
      this.error(conn, ErrorCode.unauthorized, 'token expired; send a fresh one with the auth op before it does')
      conn.close(CloseCode.unauthorized, 'token expired')
    })
    for (const [name, sub] of conn.subs) {
      if (readAccess(sub.channel, conn.user) === 'ok') continue
      this.drop(conn, name)
      this.error(conn, ErrorCode.forbidden, 'the new token may not read this channel', undefined, name)
    }
  }

  // --- subscriptions ------------------------------------------------------------------------

  join (name: string, conn: SyncConnection): void {
    this.registry.join(name, conn)
  }

  private leave (name: string, conn: SyncConnection): void {
    if (this.registry.leave(name, conn)) this.whole.release(name)
  }

  /** Removes a subscription without answering. */
  drop (conn: SyncConnection, name: string): void {
    if (!conn.subs.delete(name)) return
    this.leave(name, conn)
    conn.forget(name)
  }

  private unsubscribe (conn: SyncConnection, name: string, id?: RequestId): void {
    if (!parseChannel(name)) {
      this.error(conn, ErrorCode.unknownChannel, `no channel named ${name}`, id, name)
      return
    }
    this.drop(conn, name)
    conn.send({ type: 'unsubscribed', ...withId(id), channel: name })
  }

  /** Retries a read with backoff while `wanted()` holds (a store blip must not lose a subscribe). */
  async readWhile<T> (read: () => Promise<T>, wanted: () => boolean, what: object): Promise<T | undefined> {
    let delay = 250
    for (;;) {
      try {
        return await read()
      } catch (err) {
        if (!wanted() || this.closing) return undefined
        this.log.warn({ err, ...what, retryInMs: delay }, 'sync read failed; retrying')
        await sleep(delay)
        if (!wanted() || this.closing) return undefined
        delay = Math.min(delay * 2, 5000)
      }
    }
  }

  // --- resync after a bus gap ---------------------------------------------------------------

  /**
   * The bus came back from a gap in which changes may have been lost: forget what was known
   * from the bus, re-read every channel with local subscribers and push it where it moved
   * (versioned channels only reach clients holding an older version; whole channels go whole).
   */
  resync (): void {
    if (this.closing) return
    this.stats.busResync()
    this.feed.reset()
    for (const name of this.registry.names()) {
      const channel = parseChannel(name)
      if (!channel) continue
      if (isWholeChannel(channel)) this.whole.refresh(channel)
      else void this.resyncVersioned(channel)
    }
  }

  private async resyncVersioned (channel: Channel): Promise<void> {
    const state = await this.readWhile(() => readVersioned(channel, this.reads, this.feed), () => this.has(channel.name), { channel: channel.name })
    if (!state) return
    this.broadcast(channel.name, state.type === 'snapshot' ? 'updated' : 'deleted', state.version, state.data)
  }

  // --- shutdown -----------------------------------------------------------------------------

  /** Closes every connection with 1001 and waits (up to graceMs) for them to go. */
  async shutdown (graceMs = 2000): Promise<void> {
    this.closing = true
    this.stop()
    const open = [...this.connections]
    const gone = Promise.all(open.map((c) => new Promise<void>((resolve) => {
      if (c.socket.readyState === c.socket.CLOSED) resolve()
      else c.socket.once('close', () => resolve())
    })))
    for (const conn of open) conn.close(CloseCode.goingAway, 'server shutting down')
    let timer: NodeJS.Timeout | undefined
    await Promise.race([gone, new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs) })])
    clearTimeout(timer)
    for (const conn of open) if (conn.socket.readyState !== conn.socket.CLOSED) conn.socket.terminate()
  }

  /** Stops timers and readers (idempotent). */
  stop (): void {
    this.closing = true
    this.liveness.stop()
    this.feed.close()
    this.whole.close()
  }
}
