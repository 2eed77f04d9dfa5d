// LogoSyncClient: channels over one /sync connection, a local store of the last state per
// channel, and the REST calls the seed's pages need. Runs in browsers and in Node (pass `ws`).
import { channelForLogoVotes, channelForLogos, channelForUserVotes, type WelcomeFrame } from './protocol.js'
import { ChannelSet, type Callback } from './channel-set.js'
import type { ChannelRef } from './channels.js'
import { Connection } from './connection.js'
import { Emitter } from './emitter.js'
import { RestApi } from './rest.js'
import { applyOwnVote, pendingState, type Incoming } from './store.js'
import { tokenClaims } from './timing.js'
import type { ChannelEvent, ChannelState, ClientEvents, ConnectionStatus, Logo, LogoSyncClientOptions, SyncError, VoteResult, Voting } from './types.js'

export class LogoSyncClient extends Emitter<ClientEvents> {
  readonly url: string
  readonly apiUrl: string
  private readonly conn: Connection
  private readonly rest: RestApi
  private readonly channels: ChannelSet
  private readonly detachBrowser: () => void

  constructor (private readonly options: LogoSyncClientOptions) {
    super()
    this.url = toWebSocketUrl(options.url)
    this.apiUrl = (options.apiUrl ?? defaultApiUrl(this.url)).replace(/\/+$/, '')
    this.conn = new Connection({
      url: this.url,
      WebSocket: options.WebSocket ?? globalWebSocket() ?? missingWebSocket,
      getToken: options.getToken,
      reconnect: { minDelayMs: 100, baseDelayMs: 500, maxDelayMs: 30_000, spreadMinDelayMs: 500, spreadMaxDelayMs: 5_000, ...options.reconnect },
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      pongTimeoutMs: options.pongTimeoutMs,
      tokenRefreshMarginMs: options.tokenRefreshMarginMs ?? 30_000,
      maxFramesPerSecond: options.maxFramesPerSecond ?? 50
    }, {
      frame: (frame) => {
        this.emit('frame', frame)
        this.channels.receive(frame)
        if (frame.type === 'welcome') {
          this.emit('welcome', frame)
          this.emit('user', frame.user)
          this.channels.subscribeAll()
        } else if (frame.type === 'authenticated') {
          // A new token took: channels refused for want of rights may be readable now.
          this.emit('user', this.conn.user)
          this.channels.retryRefused()
        }
      },
      down: () => this.channels.socketDown(),
      status: (status, info) => this.emit('status', status, info),
      error: (err) => this.emit('error', err),
      sent: (frame) => this.emit('send', frame as unknown as Record<string, unknown>),
      clock: (offsetMs) => this.emit('clock', offsetMs)
    })
    this.channels = new ChannelSet({
      ready: () => this.conn.status === 'open',
      send: (frame) => this.conn.send(frame),
      nextId: () => this.conn.nextId(),
      slowDown: () => this.conn.slowDown(),
      error: (err) => this.emit('error', err)
    }, options.unsubscribeDelayMs ?? 0)
    const fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.rest = new RestApi({ apiUrl: this.apiUrl, fetch: fetchImpl, token: (reason) => this.tokenForRequest(reason) })
    this.detachBrowser = watchBrowser(() => this.conn.reconnectNow())
    if (options.autoConnect !== false) this.connect()
  }

  // ---- connection -------------------------------------------------------------------------

  get status (): ConnectionStatus { return this.conn.status }
  /** Who the server thinks we are (from `welcome`); null when anonymous or not connected yet. */
  get user (): WelcomeFrame['user'] { return this.conn.user }
  get connectionId (): string | null { return this.conn.connectionId }
  /** The server's clock, estimated from `welcome`, `pong` and `GET /voting` (ms since epoch). */
  serverNow (): number { return this.conn.clock.now() }
  get clockOffsetMs (): number { return this.conn.clock.offsetMs }

  /** Starts connecting (only needed with `autoConnect: false`). */
  connect (): void {
    if (this.conn.status === 'idle' && !this.options.WebSocket && !globalWebSocket()) {
      throw new TypeError("LogoSyncClient needs a WebSocket implementation: in Node pass { WebSocket } from 'ws'")
    }
    this.conn.start()
  }

  /** Tries to reconnect now instead of waiting out the backoff (or checks a live socket with a ping). */
  reconnect (): void { this.conn.reconnectNow() }
  /** Round trip of a `ping` op, in ms. */
  ping (): Promise<number> { return this.conn.ping() }

  /**
   * Asks `getToken` again (after signing in or out): a new token is sent in-band, signing out
   * reconnects anonymously. Channels refused for want of rights are tried again once the server
   * says `authenticated`.
   */
  async refreshAuth (): Promise<void> {
    await this.conn.refreshAuth('refresh')
  }

  /** Stops for good: closes the socket, no more reconnects. Held state stays readable. */
  close (): void {
    this.channels.close()
    this.detachBrowser()
    this.conn.close()
  }

  // ---- channels ---------------------------------------------------------------------------

  /**
   * Calls `callback` with the channel's data whenever it changes (at once, asynchronously, if
   * some is already held; with `undefined` after a `deleted`). Returns the function that
   * unsubscribes. However many callbacks share a channel, the server sees one subscription.
   */
  subscribe<T> (channel: string, callback: (data: T, event: ChannelEvent) => void): () => void {
    const entry = this.channels.entry(channel)
    const cb = callback as Callback
    entry.callbacks.add(cb)
    this.channels.retain(entry)
    if (entry.state.status !== 'pending') {
      // Read when delivered, not now: a change applied in between must not be undone by this replay.
      queueMicrotask(() => {
        const { data, version } = entry.state
        if (entry.callbacks.has(cb)) cb(data, { channel, type: 'snapshot', version })
      })
    }
    return () => {
      if (entry.callbacks.delete(cb)) this.channels.release(entry)
    }
  }

  /** Like `subscribe`, for stores (React's useSyncExternalStore): only says that something changed. */
  watch (channel: string, onChange: () => void): () => void {
    const entry = this.channels.entry(channel)
    const listener = () => onChange()
    entry.watchers.add(listener)
    this.channels.retain(entry)
    return () => {
      if (entry.watchers.delete(listener)) this.channels.release(entry)
    }
  }

  /** What is held for a channel; the same object until it changes. */
  getState<T> (channel: string): ChannelState<T> {
    return (this.channels.get(channel)?.state ?? pendingState) as ChannelState<T>
  }

  get<T> (channel: string): T | undefined { return this.getState<T>(channel).data }

  /**
   * Seeds a channel with data from elsewhere (server-rendered props) when nothing is held yet.
   * A `Logo` seeds `logos.<id>` at its version, so the subscription asks only for anything newer.
   */
  prime<T> (channel: string, data: T): void {
    const entry = this.channels.entry(channel)
    if (entry.state.status !== 'pending' || data === undefined) return
    const version = entry.ref.kind === 'logo' ? (data as Partial<Logo>).version ?? null : null
    this.channels.apply(entry, { type: 'snapshot', version, data }, 'local')
  }

  /** Channels with a subscription on the wire (or on its way there). */
  get wiredChannels (): string[] { return this.channels.wiredChannels }

  // ---- REST -------------------------------------------------------------------------------

  getLogos (): Promise<Logo[]> { return this.rest.getLogos() }
  getLogo (id: string): Promise<Logo> { return this.rest.getLogo(id) }
  getMyVotes (): Promise<string[]> { return this.rest.getMyVotes() }

  /** `GET /voting`; its `serverTime` also corrects the client's estimate of the server clock. */
  async getVoting (): Promise<Voting> {
    const sentAt = Date.now()
    const voting = await this.rest.getVoting()
    this.conn.clock.sample(voting.serverTime, sentAt, Date.now())
    return voting
  }

  /**
   * Votes (idempotent); the count it returns shows at once (see applyVote), before the
   * server's conflated push.
   */
  async vote (id: string): Promise<VoteResult> { return this.voteAndApply(() => this.rest.vote(id)) }
  async unvote (id: string): Promise<VoteResult> { return this.voteAndApply(() => this.rest.unvote(id)) }

  /**
   * A vote's own result, applied locally so the voter's page does not wait for the push:
   * - `logos.<id>.votes` carries only the count: it takes the result's count and version.
   * - the `logos` list: the count shows on its item, but the item keeps its version, since the
   *   result has no title: an admin's rename of a lower version may still be on its way and
   *   must not be dropped as older. The server's `votes` batch brings the version.
   * - `logos.<id>` (a whole logo) is left to the server, for the same reason.
   * - `users.<sub>.votes`: only if the server pushed that channel nothing while the request
   *   was out; otherwise the push (made after the vote, perhaps after another tab's change
   *   too) is newer than what the answer implies, and a late answer must not undo it.
   */
  private async voteAndApply (request: () => Promise<VoteResult>): Promise<VoteResult> {
    const sub = this.conn.user?.sub ?? claimsSub(this.conn.currentToken)
    const mineBefore = sub ? this.channels.get(channelForUserVotes(sub))?.wireFrames ?? 0 : 0
    const result = await request()
    const { logoId, totalVotes, version, voted } = result
    const counts = this.channels.get(channelForLogoVotes(logoId))
    if (counts) this.channels.apply(counts, { type: 'updated', version, data: totalVotes }, 'local')
    const list = this.channels.get(channelForLogos)
    if (list) {
      const next = applyOwnVote(list.state, list.memo, logoId, { totalVotes, version })
      if (next) this.channels.setState(list, next, { channel: list.name, type: 'local', version: null })
    }
    const mine = sub ? this.channels.get(channelForUserVotes(sub)) : undefined
    if (mine && mine.state.status === 'ready' && mine.wireFrames === mineBefore) {
      const ids = (mine.state.data as string[]).filter((x) => x !== logoId)
      this.channels.apply(mine, { type: 'updated', version: null, data: voted ? [...ids, logoId] : ids }, 'local')
    }
    return result
  }

  /**
   * Reads a channel's state over REST and applies it like a snapshot (versions still win).
   * Used for `revalidateOn*` and for polling while the socket is down.
   */
  async revalidate (channel: string): Promise<void> {
    const entry = this.channels.entry(channel)
    const wireFrames = entry.wireFrames
    const incoming = await this.fetchChannel(entry.ref)
    if (!incoming) return
    // An answer without a version (the list, the deadline over REST, private channels, a 404)
    // cannot be ordered against the wire: whatever the socket sent while it was in flight is at
    // least as new (a list snapshot may already lack a logo deleted in between), so it wins.
    if (incoming.version === null && entry.wireFrames !== wireFrames) return
    if (incoming.version === null && entry.ref.kind !== 'logos') {
      // No version to compare: live data knows better.
      if (entry.wired && this.conn.status === 'open' && entry.state.status !== 'pending') return
      if (entry.ref.kind === 'userVotes' || incoming.type === 'deleted') return this.channels.apply(entry, incoming, 'rest')
      // Keep the version held, so the next subscribe's `since` still asks for anything newer.
      if (entry.state.status !== 'ready' || entry.state.data !== incoming.data) {
        this.channels.setState(entry, { ...entry.state, data: incoming.data, status: 'ready', error: null }, { channel, type: 'rest', version: entry.state.version })
      }
      return
    }
    this.channels.apply(entry, incoming, 'rest')
  }

  private async fetchChannel (ref: ChannelRef): Promise<Incoming | null> {
    switch (ref.kind) {
      case 'logos': return { type: 'snapshot', version: null, data: await this.rest.getLogos() }
      case 'logo': {
        try {
          const logo = await this.rest.getLogo(ref.logoId)
          return { type: 'snapshot', version: logo.version, data: logo }
        } catch (err) {
          if ((err as SyncError).status === 404) return { type: 'deleted', version: null, data: { _id: ref.logoId } }
          throw err
        }
      }
      case 'logoVotes': {
        const count = await this.rest.getVotes(ref.logoId)
        return { type: 'snapshot', version: count.version, data: count.totalVotes }
      }
      case 'deadline': return { type: 'snapshot', version: null, data: (await this.getVoting()).deadline }
      case 'userVotes': {
        const sub = this.conn.user?.sub ?? claimsSub(await this.tokenForRequest('request'))
        return sub === ref.sub ? { type: 'snapshot', version: null, data: await this.rest.getMyVotes() } : null
      }
      default: return null
    }
  }

  /** The token held while it has a few seconds left; otherwise (or after a 401) a new one from getToken. */
  private async tokenForRequest (reason: 'request' | 'unauthorized'): Promise<string | null> {
    const current = this.conn.currentToken
    const exp = current ? tokenClaims(current)?.exp : undefined
    if (reason === 'request' && current && (exp === undefined || exp * 1000 - this.serverNow() > 5_000)) return current
    if (!this.options.getToken) return null
    return (await this.options.getToken({ reason })) ?? null
  }
}

const claimsSub = (token: string | null) => (token ? tokenClaims(token)?.sub : undefined)
const globalWebSocket = () => (globalThis as { WebSocket?: LogoSyncClientOptions['WebSocket'] }).WebSocket

/** `http(s)://…` becomes `ws(s)://…`; relative URLs resolve against the page in a browser. */
function toWebSocketUrl (url: string): string {
  const base = (globalThis as { location?: { href: string } }).location?.href
  const u = new URL(url, base)
  if (u.protocol === 'http:') u.protocol = 'ws:'
  else if (u.protocol === 'https:') u.protocol = 'wss:'
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`Not a WebSocket URL: ${url}`)
  return u.toString()
}

/** The REST API at the same origin as the socket, over http(s). */
function defaultApiUrl (wsUrl: string): string {
  const u = new URL(wsUrl)
  return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`
}

const missingWebSocket = class {
  constructor () { throw new TypeError("No WebSocket implementation: in Node pass { WebSocket } from 'ws'") }
} as unknown as NonNullable<LogoSyncClientOptions['WebSocket']>

/** In a browser: reconnect at once when the network comes back or the tab returns to the front. */
function watchBrowser (wake: () => void): () => void {
  const w = globalThis as { addEventListener?: (t: string, l: () => void) => void, removeEventListener?: (t: string, l: () => void) => void, document?: { visibilityState?: string } }
  if (typeof w.addEventListener !== 'function' || !w.document) return () => {}
  const onVisible = () => { if (w.document?.visibilityState === 'visible') wake() }
  w.addEventListener('online', wake)
  w.addEventListener('visibilitychange', onVisible)
  return () => {
    w.removeEventListener?.('online', wake)
    w.removeEventListener?.('visibilitychange', onVisible)
  }
}
