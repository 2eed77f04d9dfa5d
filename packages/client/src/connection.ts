// One WebSocket to /sync at a time, kept alive: reconnect with exponential backoff and full
// jitter as each close code asks (closeRule in ./protocol.ts), dead-connection detection by
// heartbeat, the token from `getToken` (before each connection, before it expires, after a
// close that asks for a new one) and an estimate of the server's clock.
// What the connection carries (subscriptions, state) is the client's business, not this file's.
import { closeRule, type ClientFrame, type PongFrame, type ServerFrame, type WelcomeFrame } from './protocol.js'
import { Heartbeat } from './heartbeat.js'
import { Outbox } from './outbox.js'
import { ServerClock, backoffDelay, refreshDelay, tokenExpiry } from './timing.js'
import { SyncError, type ConnectionStatus, type ReconnectOptions, type TokenReason, type TokenSource, type WebSocketConstructor, type WebSocketLike } from './types.js'

export interface ConnectionOptions {
  url: string
  WebSocket: WebSocketConstructor
  getToken?: TokenSource
  reconnect: Required<ReconnectOptions>
  connectTimeoutMs: number
  pongTimeoutMs?: number
  tokenRefreshMarginMs: number
  /** Frames sent per second at most; more wait their turn (the server closes floods with 4008). */
  maxFramesPerSecond: number
}

export interface ConnectionHooks {
  /** Every frame, the welcome included, after the connection has read what it needs. */
  frame (frame: ServerFrame): void
  /** The socket is gone: whatever was live on it is not any more. */
  down (): void
  status (status: ConnectionStatus, info: { closeCode?: number, retryInMs?: number }): void
  error (err: SyncError): void
  sent (frame: ClientFrame): void
  /** The estimate of the server's clock moved. */
  clock (offsetMs: number): void
}

const OPEN = 1
/** A connection that lived this long counts as a success: the next backoff starts over. */
const STABLE_MS = 5_000
const MAX_TIMER_MS = 2 ** 31 - 1

export class Connection {
  status: ConnectionStatus = 'idle'
  user: WelcomeFrame['user'] = null
  connectionId: string | null = null
  readonly clock: ServerClock

  private socket: WebSocketLike | null = null
  /** Bumped for every socket, so events of a replaced one are ignored. */
  private generation = 0
  private attempt = 0
  private unauthorizedStreak = 0
  /** The last close asked for spread reconnects: retries use the wider window until a welcome. */
  private spread = false
  private token: string | null = null
  private tokenReason: TokenReason = 'connect'
  private welcomedAt = 0
  private requestSeq = 0
  private readonly outbox: Outbox
  private readonly heartbeat: Heartbeat
  private readonly timers: Record<'retry' | 'connect' | 'refresh', ReturnType<typeof setTimeout> | undefined> =
    { retry: undefined, connect: undefined, refresh: undefined }

  constructor (private readonly opts: ConnectionOptions, private readonly hooks: ConnectionHooks) {
    this.clock = new ServerClock((offsetMs) => hooks.clock(offsetMs))
    this.outbox = new Outbox(opts.maxFramesPerSecond)
    this.heartbeat = new Heartbeat({
      send: (frame) => this.send(frame),
      nextId: () => this.nextId(),
      dead: () => this.drop(),
      clock: this.clock,
      pongTimeoutMs: opts.pongTimeoutMs
    })
  }

  /** A getter, not a field test, so TypeScript does not narrow it across an await. */
  private get stopped (): boolean { return this.status === 'closed' }
  get isOpen (): boolean { return this.status === 'open' && this.socket?.readyState === OPEN }
  get currentToken (): string | null { return this.token }

  nextId (): number { return ++this.requestSeq }

  start (): void {
    if (this.status === 'idle') void this.connect()
  }

  /** Sends a frame if the socket is open, paced (see Outbox); false when there is no open socket. */
  send (frame: ClientFrame): boolean {
    if (!this.socket || this.socket.readyState !== OPEN) return false
    return this.outbox.send(frame)
  }

  /** The server refused frames as too many (`rate_limited`): send at half the pace from now on. */
  slowDown (): void { this.outbox.slowDown() }

  /** Measures the round trip with a `ping` op (also refreshes the clock estimate). */
  ping (): Promise<number> { return this.heartbeat.ping() }

  /** Try now instead of waiting out the backoff (a browser came back online or to the front). */
  reconnectNow (): void {
    if (this.status === 'reconnecting' && !this.socket) void this.connect()
    else if (this.isOpen) this.heartbeat.check(true)
  }

  /**
   * Asks `getToken` again: a new token is sent in-band on a live connection; no token (signed
   * out) means a fresh anonymous connection, since a connection cannot shed its identity in-band.
   */
  async refreshAuth (reason: TokenReason = 'refresh', beforeExpiry = false): Promise<void> {
    if (!this.opts.getToken || this.status === 'closed') return
    let next: string | null
    try {
      next = await this.resolveToken(reason)
    } catch (err) {
      this.hooks.error(new SyncError(`getToken failed: ${(err as Error).message}`, 'unauthorized'))
      if (beforeExpiry) this.retryRefresh()
      else this.arm('refresh', 5_000, () => { void this.refreshAuth(reason) })
      return
    }
    if (this.stopped) return
    if (next === this.token) {
      // getToken handed back the token about to expire (a cache): stopping here would let the
      // server close with 4001 at expiry, so ask again, saying the held token will not do.
      if (beforeExpiry) this.retryRefresh()
      return
    }
    const signedOut = this.token !== null && next === null
    this.token = next
    if (signedOut || (next && !this.isOpen && this.socket)) {
      this.restart()
    } else if (next && this.isOpen) {
      this.send({ op: 'auth', token: next, id: this.nextId() })
      this.scheduleRefresh()
    }
  }

  /** Stops for good: no more reconnects, timers cleared. */
  close (): void {
    if (this.status === 'closed') return
    const socket = this.socket
    this.detach()
    this.setStatus('closed', {})
    try { socket?.close(1000, 'client closed') } catch { /* already closing */ }
    if (socket) this.hooks.down()
  }

  /** Drops the current socket and connects again right away. */
  private restart (): void {
    const socket = this.socket
    this.detach()
    try { socket?.close(1000, 'reconnecting') } catch { /* already closing */ }
    this.hooks.down()
    this.attempt = 0
    void this.connect()
  }

  private async resolveToken (reason: TokenReason): Promise<string | null> {
    if (!this.opts.getToken) return null
    return (await this.opts.getToken({ reason })) ?? null
  }

  private async connect (): Promise<void> {
    clearTimeout(this.timers.retry)
    if (this.status === 'closed') return
    const generation = ++this.generation
    this.setStatus(this.status === 'idle' || this.status === 'connecting' ? 'connecting' : 'reconnecting', {})
    let token: string | null
    try {
      token = await this.resolveToken(this.tokenReason)
    } catch (err) {
      this.hooks.error(new SyncError(`getToken failed: ${(err as Error).message}`, 'unauthorized'))
      if (generation === this.generation) this.scheduleRetry(undefined)
      return
    }
    if (generation !== this.generation || this.stopped) return
    if (token && this.unauthorizedStreak >= 2) {
      // The server keeps refusing what getToken gives: stay live on the public channels.
      this.hooks.error(new SyncError('The server refused the token again; connecting without it', 'token_expired'))
      token = null
    }
    this.token = token
    this.tokenReason = 'connect'
    let socket: WebSocketLike
    try {
      socket = new this.opts.WebSocket(token ? withToken(this.opts.url, token) : this.opts.url)
    } catch (err) {
      this.hooks.error(new SyncError(`Cannot open ${this.opts.url}: ${(err as Error).message}`, 'network_error'))
      this.scheduleRetry(undefined)
      return
    }
    this.socket = socket
    const startedAt = Date.now()
    const current = () => generation === this.generation && this.socket === socket
    // Listeners stay for the socket's life (an `error` listener must, for `ws`); `current()`
    // makes a replaced socket's events no-ops.
    socket.addEventListener('open', () => {
      if (!current()) return
      this.heartbeat.seen()
      this.outbox.attach((frame) => {
        if (!current() || socket.readyState !== OPEN) return false
        socket.send(JSON.stringify(frame))
        this.hooks.sent(frame)
        return true
      })
    })
    socket.addEventListener('message', (event) => { if (current()) this.receive(event.data, startedAt) })
    socket.addEventListener('close', (event) => { if (current()) this.lost(event.code) })
    socket.addEventListener('error', () => { /* a close event follows */ })
    socket.on?.('ping', () => { if (current()) this.heartbeat.seen() })
    this.arm('connect', this.opts.connectTimeoutMs, () => this.drop())
  }

  private receive (raw: unknown, startedAt: number): void {
    const now = Date.now()
    this.heartbeat.seen()
    let frame: ServerFrame
    try {
      frame = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw as ArrayBuffer)) as ServerFrame
    } catch {
      this.hooks.error(new SyncError('The server sent a frame that is not JSON', 'protocol_error'))
      return
    }
    if (!frame || typeof frame !== 'object') return
    if (frame.type === 'welcome') this.welcome(frame as WelcomeFrame, startedAt, now)
    else if (frame.type === 'pong') this.heartbeat.pong(frame as PongFrame, now)
    else if (frame.type === 'authenticated') this.user = frame.user
    this.hooks.frame(frame)
  }

  private welcome (frame: WelcomeFrame, startedAt: number, now: number): void {
    clearTimeout(this.timers.connect)
    this.welcomedAt = now
    this.spread = false
    this.user = frame.user
    this.connectionId = frame.connectionId
    this.clock.sample(frame.serverTime, startedAt, now)
    this.setStatus('open', {})
    this.heartbeat.start(frame.heartbeatMs)
    this.scheduleRefresh()
  }

  /** The socket closed (or was declared dead): forget it, then try again after a backoff. */
  private lost (closeCode: number | undefined): void {
    const lived = this.welcomedAt > 0 && Date.now() - this.welcomedAt >= STABLE_MS
    this.detach()
    this.hooks.down()
    if (this.status === 'closed') return
    if (lived) {
      this.attempt = 0
      this.unauthorizedStreak = 0
    }
    const rule = closeRule(closeCode)
    if (rule.reconnect === 'stop') {
      // The server says this client broke the protocol; the same client would again.
      this.hooks.error(new SyncError(`The server closed the connection with ${closeCode} (${rule.meaning}); not reconnecting`, 'protocol_error'))
      this.setStatus('closed', { closeCode })
      return
    }
    // A whole crowd was sent away at once (a replica stopping or overloaded): wider window.
    if (rule.reconnect === 'spread') this.spread = true
    if (rule.slowDown) this.outbox.slowDown()
    if (rule.newToken) {
      this.tokenReason = 'unauthorized'
      this.token = null
      // The first refusal is usually an expired token: ask for a new one and retry at once.
      if (this.unauthorizedStreak++ === 0) return this.scheduleRetry(closeCode, this.opts.reconnect.minDelayMs)
    }
    this.scheduleRetry(closeCode)
  }

  private scheduleRetry (closeCode: number | undefined, delayMs?: number): void {
    const delay = delayMs ?? backoffDelay(this.attempt++, this.opts.reconnect, Math.random, this.spread)
    this.setStatus('reconnecting', { closeCode, retryInMs: delay })
    this.arm('retry', delay, () => { void this.connect() })
  }

  /** Declares the socket dead without waiting for a closing handshake that may never come. */
  private drop (): void {
    const socket = this.socket
    if (!socket) return
    try {
      if (socket.terminate) socket.terminate()
      else socket.close(1000, 'heartbeat timeout')
    } catch { /* already gone */ }
    this.lost(undefined)
  }

  private scheduleRefresh (): void {
    clearTimeout(this.timers.refresh)
    const expiresAt = this.token && this.opts.getToken ? tokenExpiry(this.token) : null
    if (expiresAt === null) return
    const delay = refreshDelay(expiresAt, this.clock.now(), this.opts.tokenRefreshMarginMs)
    this.arm('refresh', delay, () => { void this.refreshAuth('refresh', true) })
  }

  /**
   * A refresh before expiry got no new token: ask again shortly (a quarter of the time left,
   * between 250 ms and 5 s) with reason `unauthorized`, until the token expires; then the
   * server's 4001 close leads to a reconnect, which asks the same way.
   */
  private retryRefresh (): void {
    const expiresAt = this.token ? tokenExpiry(this.token) : null
    if (expiresAt === null || !this.isOpen) return
    const remaining = expiresAt - this.clock.now()
    if (remaining <= 0) return
    this.arm('refresh', Math.min(5_000, Math.max(250, remaining / 4)), () => { void this.refreshAuth('unauthorized', true) })
  }

  private arm (timer: keyof Connection['timers'], delayMs: number, fn: () => void): void {
    clearTimeout(this.timers[timer])
    const t = setTimeout(fn, Math.min(delayMs, MAX_TIMER_MS))
    // In Node the socket keeps the process alive; these timers alone should not. The retry
    // timer should: a Node client between two attempts is still working.
    if (timer !== 'retry') (t as { unref?: () => void }).unref?.()
    this.timers[timer] = t
  }

  /** Forgets the socket: handlers off, timers cleared, outstanding pings failed. */
  private detach (): void {
    this.generation++
    this.socket = null
    this.welcomedAt = 0
    this.connectionId = null
    for (const key of Object.keys(this.timers) as (keyof Connection['timers'])[]) clearTimeout(this.timers[key])
    this.heartbeat.stop()
    this.outbox.detach()
  }

  private setStatus (status: ConnectionStatus, info: { closeCode?: number, retryInMs?: number }): void {
    if (this.status === 'closed') return
    const changed = this.status !== status
    this.status = status
    if (changed || info.retryInMs !== undefined) this.hooks.status(status, info)
  }
}

function withToken (url: string, token: string): string {
  const u = new URL(url)
  u.searchParams.set('token', token)
  return u.toString()
}
