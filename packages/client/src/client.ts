// LogoSyncClient: channels over one /sync connection, a local store of the last state per
// channel, and the REST calls the seed's pages need. Runs in browsers and in Node (pass `ws`).
import { channelForLogoVotes, channelForLogos, channelForUserVotes, type WelcomeFrame } from './protocol.js'
import { ChannelSet, type Callback, type ChannelEntry } from './channel-set.js'
import type { ChannelRef } from './channels.js'
import { Connection } from './connection.js'
import { Emitter } from './emitter.js'
import { defaultApiUrl, globalWebSocket, missingWebSocket, noWebSocket, pageHidden, toWebSocketUrl, watchBrowser } from './env.js'
import { Pollers } from './poller.js'
import { RestApi } from './rest.js'
import { applyOwnVote, pendingState, type Incoming } from './store.js'
import { tokenClaims } from './timing.js'
import type { ChannelEvent, ChannelState, ClientEvents, ConnectionStatus, Logo, LogoSyncClientOptions, MutateData, MutateOptions, SyncError, VoteResult, Voting } from './types.js'

export class LogoSyncClient extends Emitter<ClientEvents> {
  readonly url: string
  readonly apiUrl: string
  private readonly conn: Connection
  private readonly rest: RestApi
  private readonly channels: ChannelSet
  private readonly detachBrowser: () => void
  private readonly pollers = new Pollers((channel) => {
    if (this.conn.status !== 'open' && !pageHidden()) this.revalidate(channel).catch(() => {})
  })

  private mutations = 0

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
    }, options.unsubscribeDelayMs ?? 0, options.channelTtlMs ?? 300_000)
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
    if (this.conn.status === 'idle' && !this.options.WebSocket && !globalWebSocket()) throw noWebSocket()
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
    this.pollers.close()
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
        const { data, version } = this.channels.view(entry)
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
    const entry = this.channels.get(channel)
    return (entry ? this.channels.view(entry) : pendingState) as ChannelState<T>
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
  /** Channels the client holds state for (forgotten once unused for `channelTtlMs`). */
  get heldChannels (): string[] { return this.channels.names }

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
   * Used for `revalidateOn*` and for polling while the socket is down. One read per channel at a
   * time: whoever asks while one is in flight shares it. Its failure becomes the channel's
   * `error` until a later read (or the wire) succeeds; `validating` is true meanwhile.
   */
  revalidate (channel: string): Promise<void> {
    const entry = this.channels.entry(channel)
    if (entry.validating) return entry.validating
    const release = this.channels.hold(entry)
    const done = (error: SyncError | null) => {
      this.channels.overlay(entry, (e) => { e.validating = undefined }, null)
      if (error || (entry.state.error && entry.state.error === entry.restError)) {
        entry.restError = error
        this.channels.setState(entry, { ...entry.state, error }, null)
      }
      release()
    }
    const run = this.read(entry).then(() => done(null), (err: SyncError) => {
      done(err)
      throw err
    })
    this.channels.overlay(entry, (e) => { e.validating = run }, null)
    return run
  }

  /**
   * Polls the channel over REST every `intervalMs` while the socket is not open (and the page
   * is not hidden), until the returned function is called. However many ask, one timer per
   * channel, at the shortest interval asked for: a gallery of cards polls once per channel.
   */
  poll (channel: string, intervalMs: number): () => void {
    const release = this.channels.hold(this.channels.entry(channel))
    const stop = this.pollers.add(channel, intervalMs)
    return () => {
      stop()
      release()
    }
  }

  /**
   * Changes a channel's data locally, SWR-style: `optimisticData` shows at once; `data` (a
   * value, a promise, or a function of the current data returning either) becomes the data once
   * it resolves, unless the server pushed the channel something meanwhile (the push is newer);
   * on failure the server's state shows again (`rollbackOnError`, default true) and the error is
   * thrown. Pushed frames that arrive while it is out update the server's state underneath, so
   * nothing flickers back; then, unless `revalidate: false`, the channel is read over REST.
   * `mutate(channel)` alone revalidates. Resolves with the data.
   */
  async mutate<T> (channel: string, data?: MutateData<T>, options: MutateOptions<T> = {}): Promise<T | undefined> {
    const entry = this.channels.entry(channel)
    if (data === undefined) {
      await this.revalidate(channel)
      return this.get<T>(channel)
    }
    const { optimisticData, rollbackOnError = true, revalidate = true, populateCache = true } = options
    const release = this.channels.hold(entry)
    const seq = ++this.mutations
    const event: ChannelEvent = { channel, type: 'local', version: null }
    let shown: T | undefined
    if (optimisticData !== undefined) {
      shown = typeof optimisticData === 'function' ? (optimisticData as (c: T | undefined) => T)(this.get<T>(channel)) : optimisticData
      this.channels.overlay(entry, (e) => { e.optimistic = { data: shown, seq } }, event)
    }
    const wireFrames = entry.wireFrames
    // Only the latest mutation's end takes its data off; an earlier one ending leaves it on.
    const settle = (commit: boolean, value?: T) => {
      if (entry.optimistic && entry.optimistic.seq !== seq) return
      this.channels.overlay(entry, (e) => { e.optimistic = undefined }, event)
      if (commit) this.channels.setState(entry, { ...entry.state, data: value, status: 'ready', error: null }, { ...event, version: entry.state.version })
    }
    try {
      const result = await (typeof data === 'function' ? (data as (c: T | undefined) => T | Promise<T>)(entry.state.data as T | undefined) : data)
      settle(populateCache && result !== undefined && entry.wireFrames === wireFrames, result)
      return result
    } catch (err) {
      settle(!rollbackOnError && optimisticData !== undefined, shown)
      throw err
    } finally {
      release()
      if (revalidate) this.revalidate(channel).catch(() => {})
    }
  }

  /**
   * Resolves once the channel holds state (React Suspense waits on it), rejects with the
   * channel's error. Subscribes meanwhile, and reads it over REST if the socket is not open.
   */
  ready (channel: string): Promise<void> {
    const entry = this.channels.entry(channel)
    entry.ready ??= new Promise<void>((resolve, reject) => {
      const check = () => {
        const { status, error } = this.getState(channel)
        if (status === 'pending' && !error) return
        entry.ready = undefined
        // Held a moment longer: the component that waited mounts and takes the channel over.
        setTimeout(off, 1_000)
        if (status === 'pending') reject(error)
        else resolve()
      }
      const off = this.watch(channel, check)
      if (this.conn.status !== 'open') this.revalidate(channel).catch(() => {})
      check()
    })
    return entry.ready
  }

  private async read (entry: ChannelEntry): Promise<void> {
    const channel = entry.name
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
      // Nothing over REST: the count exists only on the socket; a name outside the protocol has none.
      case 'presence': case 'other': return null
      default: {
        // Every kind has its case above (its REST read, or null): a new one does not compile until it has.
        const none: never = ref
        return none
      }
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
