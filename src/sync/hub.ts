// The sync hub: connections and who they act as, dispatch of the /sync ops, the bus feed,
// resync after a bus gap, heartbeats, slow consumers and shutdown. Who is subscribed to what,
// and what a subscriber still needs, is subscriptions.ts. Transport-agnostic: it gets `ws`
// sockets and already validated frames from routes/sync.ts.
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import type { BusMessage } from '../bus/types.js'
import type { Principal } from '../domain.js'
import { Presence } from '../presence/presence.js'
import type { PresenceBackend } from '../presence/types.js'
import { settleWithin } from '../timeout.js'
import { CloseCode, ErrorCode, type ClientFrame, type RequestId } from '../protocol.js'
import { PRESENCE_CHANNEL } from './channels.js'
import { SyncConnection, type ConnectionLimits } from './connection.js'
import { ChangeFeed } from './feed.js'
import { withId, type ParsedFrame } from './frames.js'
import { Liveness } from './liveness.js'
import { readList, readVersioned, type SyncReads } from './snapshots.js'
import { SyncStats } from './stats.js'
import { Subscriptions } from './subscriptions.js'

export interface HubLimits extends ConnectionLimits {
  maxSubscriptions: number
  conflateMs: number
  heartbeatMs: number
}

export interface HubOptions {
  reads: SyncReads
  /** Rejects for any token that must not be accepted. Async: a JWKS key may have to be fetched. */
  verifyToken: (token: string) => Promise<Principal>
  limits: HubLimits
  log: FastifyBaseLogger
  /** Where presence is counted across replicas (src/presence), and this replica's id there. */
  presence: { backend: PresenceBackend, replicaId: string }
}

export class SyncHub {
  readonly stats = new SyncStats()
  /** Who is present (subscribed to `presence.logos`) here, and the total across replicas. */
  readonly presence: Presence
  private readonly feed: ChangeFeed
  private readonly subscriptions: Subscriptions
  private readonly limits: HubLimits
  private readonly log: FastifyBaseLogger
  private readonly connections = new Set<SyncConnection>()
  private readonly liveness: Liveness
  private readonly verifyToken: HubOptions['verifyToken']
  private closing = false
  /** False once the drain starts closing connections: the route refuses new ones (503). */
  private accepting = true

  constructor (opts: HubOptions) {
    const { reads } = opts
    this.limits = opts.limits
    this.log = opts.log
    this.verifyToken = opts.verifyToken
    const warn = (obj: object, msg: string) => this.log.warn(obj, msg)
    this.presence = new Presence({
      backend: opts.presence.backend,
      replicaId: opts.presence.replicaId,
      heartbeatMs: opts.limits.heartbeatMs,
      conflateMs: opts.limits.conflateMs,
      push: (total, seq) => this.subscriptions.broadcast(PRESENCE_CHANNEL, 'updated', null, total, { readSeq: seq }),
      log: this.log
    })
    // State reads are never older than what the feed has seen on the bus (snapshots.ts).
    this.subscriptions = new Subscriptions({
      reads: {
        versioned: (channel) => readVersioned(channel, reads, this.feed),
        list: () => readList(reads, this.feed),
        userVotes: (sub) => reads.userVotes(sub)
      },
      presence: this.presence,
      stats: this.stats,
      maxSubscriptions: opts.limits.maxSubscriptions,
      warn
    })
    const subs = this.subscriptions
    this.feed = new ChangeFeed({
      has: (channel) => subs.has(channel),
      broadcast: (channel, type, version, data, o) => subs.broadcast(channel, type, version, data, o),
      refreshUserVotes: (sub) => subs.refreshUserVotes(sub),
      refreshUserVotesHolding: (logoId) => subs.refreshUserVotesHolding(logoId),
      getLogo: (id) => reads.getLogo(id),
      warn
    }, opts.limits.conflateMs)
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

  // --- connections --------------------------------------------------------------------------

  /**
   * A new socket: authenticate from the handshake token (if any), then welcome it. Frames that
   * arrive while the token is being verified wait for it (see `dispatch`).
   */
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
    if (token === null) this.welcome(conn, null)
    else this.inOrder(conn, () => this.verifyHandshake(conn, token))
    return conn
  }

  private async verifyHandshake (conn: SyncConnection, token: string): Promise<void> {
    let user: Principal
    try {
      user = await this.verifyToken(token)
    } catch {
      conn.error(ErrorCode.unauthorized, 'token is invalid or expired')
      conn.close(CloseCode.unauthorized, 'invalid token')
      return
    }
    this.welcome(conn, user)
  }

  private welcome (conn: SyncConnection, user: Principal | null): void {
    if (conn.closing) return
    this.log.debug({ connectionId: conn.id, user: user?.sub ?? null, role: user?.role ?? null }, 'sync connection opened')
    conn.send({
      type: 'welcome',
      connectionId: conn.id,
      serverTime: new Date().toISOString(),
      user: user ? { sub: user.sub, role: user.role } : null,
      heartbeatMs: this.limits.heartbeatMs
    })
    if (user) this.identify(conn, user)
  }

  /**
   * Runs an identity change (handshake or auth op) after any still in flight, and makes every
   * frame that arrives meanwhile wait for it: a subscribe sent right after an auth op acts as
   * the identity that op gave, as it did when verification was synchronous.
   */
  private inOrder (conn: SyncConnection, change: () => Promise<void>): Promise<void> {
    const previous = conn.identityPending ?? Promise.resolve()
    const pending = previous.then(change).catch((err: unknown) => {
      this.log.error({ err, connectionId: conn.id }, 'sync identity change failed')
    })
    conn.identityPending = pending
    void pending.then(() => { if (conn.identityPending === pending) conn.identityPending = null })
    return pending
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
      conn.close(CloseCode.internalError, 'internal error')
      return
    }
    const status = Object.getOwnPropertySymbols(err).find((k) => k.description === 'status-code')
    const code = status ? (err as unknown as Record<symbol, unknown>)[status] : undefined
    if (typeof code === 'number') conn.closeCode ??= code
    this.log.debug({ err, connectionId: conn.id }, 'sync client protocol error')
  }

  private disconnected (conn: SyncConnection, code: number): void {
    if (!this.connections.delete(conn)) return
    // Frames that waited for the handshake token's verification check this after their wait:
    // one for a peer that has gone must not subscribe (it would stay in the registry for good).
    conn.closing = true
    conn.dispose()
    this.subscriptions.leaveAll(conn)
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
    if (admission === 'limited') conn.error(ErrorCode.rateLimited, `more than ${this.limits.rateLimit} frames per second; frames are being dropped`)
    if (admission === 'close') conn.close(CloseCode.rateLimited, 'rate limit exceeded')
    return false
  }

  /** A frame that failed parsing or validation. */
  reject (conn: SyncConnection, failure: Extract<ParsedFrame, { ok: false }>): void {
    this.stats.frameIn('invalid')
    conn.error(ErrorCode.badRequest, failure.message, failure.id)
    // 1008 (policy violation): the standard code for a peer that keeps breaking the protocol.
    if (conn.badFrame()) conn.close(CloseCode.policyViolation, 'too many malformed frames')
  }

  /** One valid frame. Never rejects: a failed op is logged here. */
  handle (conn: SyncConnection, frame: ClientFrame): Promise<void> {
    return this.dispatch(conn, frame).catch((err: unknown) => {
      this.log.error({ err, op: frame.op, connectionId: conn.id }, 'sync op failed')
    })
  }

  private async dispatch (conn: SyncConnection, frame: ClientFrame): Promise<void> {
    if (conn.closing || this.closing) return
    this.stats.frameIn(frame.op)
    conn.goodFrame()
    // Queued synchronously, before any await, so identity changes keep the order they came in.
    if (frame.op === 'auth') return this.inOrder(conn, () => this.authenticate(conn, frame.token, frame.id))
    if (conn.identityPending) await conn.identityPending
    if (conn.closing || this.closing) return
    switch (frame.op) {
      case 'ping':
        conn.send({ type: 'pong', ...withId(frame.id), serverTime: new Date().toISOString() })
        return
      case 'unsubscribe':
        this.subscriptions.unsubscribe(conn, frame.channel, frame.id)
        return
      case 'subscribe':
        await this.subscriptions.subscribe(conn, frame)
    }
  }

  /**
   * The auth op, all or nothing: everything the reply needs is worked out before the identity
   * changes, so a token that cannot be answered for (an expiry no Date can hold) changes nothing.
   */
  private async authenticate (conn: SyncConnection, token: string, id?: RequestId): Promise<void> {
    let user: Principal
    let expiresAt: string | null
    try {
      user = await this.verifyToken(token)
      expiresAt = typeof user.exp === 'number' ? new Date(user.exp * 1000).toISOString() : null
    } catch {
      // The connection keeps the identity it had; only its own token expiring closes it.
      conn.error(ErrorCode.unauthorized, 'token is invalid or expired', id)
      return
    }
    if (conn.closing) return
    this.identify(conn, user)
    conn.send({ type: 'authenticated', ...withId(id), user: { sub: user.sub, role: user.role }, expiresAt })
  }

  /** Sets the connection's user; drops private subscriptions the new user may not read. */
  private identify (conn: SyncConnection, user: Principal): void {
    conn.setUser(user, () => {
      conn.error(ErrorCode.unauthorized, 'token expired; send a fresh one with the auth op before it does')
      conn.close(CloseCode.unauthorized, 'token expired')
    })
    this.subscriptions.revoke(conn)
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
    this.subscriptions.rereadAll()
  }

  // --- shutdown -----------------------------------------------------------------------------

  /** Whether a new /sync connection is welcome (false once the drain closes connections). */
  get acceptsConnections (): boolean {
    return this.accepting && !this.closing
  }

  /** Open /sync connections on this replica. */
  get connectionCount (): number {
    return this.connections.size
  }

  /**
   * The drain's last step before shutdown: new connections are refused (the route answers 503,
   * which a balancer retries on another replica), and the open ones are closed with 1001 in
   * batches spread evenly over `spreadMs`, so their reconnects reach the other replicas as a
   * trickle rather than all in one tick. Until its batch comes, a connection is served as usual.
   * Resolves once every one is gone, or `closeTimeoutMs` after the last batch.
   */
  async drain (spreadMs: number, closeTimeoutMs = 5000): Promise<void> {
    this.accepting = false
    const open = [...this.connections]
    const gone = Promise.all(open.map(closedOf))
    // A batch at most every 50 ms: finer than that only costs timers.
    const batches = Math.max(1, Math.min(open.length, Math.floor(spreadMs / 50)))
    const size = Math.ceil(open.length / batches)
    for (let i = 0; i < batches; i++) {
      if (i > 0) await sleep(spreadMs / batches)
      for (const conn of open.slice(i * size, (i + 1) * size)) conn.close(CloseCode.goingAway, 'server shutting down')
    }
    await settleWithin(gone, closeTimeoutMs, { unref: true })
  }

  /** Closes every connection with 1001 and waits (up to graceMs) for them to go. */
  async shutdown (graceMs = 2000): Promise<void> {
    this.closing = true
    this.stop()
    const open = [...this.connections]
    const gone = Promise.all(open.map(closedOf))
    for (const conn of open) conn.close(CloseCode.goingAway, 'server shutting down')
    await settleWithin(gone, graceMs, { unref: true })
    for (const conn of open) if (conn.socket.readyState !== conn.socket.CLOSED) conn.socket.terminate()
  }

  /** Stops timers and readers (idempotent). */
  stop (): void {
    this.closing = true
    this.liveness.stop()
    this.feed.close()
    this.subscriptions.close()
  }
}

/** Resolves when the connection's socket has closed (at once if it has). */
function closedOf (conn: SyncConnection): Promise<void> {
  return new Promise((resolve) => {
    if (conn.socket.readyState === conn.socket.CLOSED) resolve()
    else conn.socket.once('close', () => resolve())
  })
}

/** A timer that never keeps the process alive on its own. */
function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => { setTimeout(resolve, ms).unref() })
}
