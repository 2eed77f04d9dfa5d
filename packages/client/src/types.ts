// Public types of the client SDK. Wire and data shapes come from ./protocol.ts, the vocabulary
// this package shares with the server.
import type { ChannelFrame, ErrorCode, Logo, ServerFrame, VoteCount, VoteResult, Voting, WelcomeFrame } from './protocol.js'

export type { Logo, Voting, VoteCount, VoteResult }
export type { ChannelFrame, ErrorCode, ServerFrame, WelcomeFrame }

/**
 * - `idle`: created with `autoConnect: false`, nothing attempted yet
 * - `connecting`: first connection attempt
 * - `open`: the server said `welcome`; subscriptions are live
 * - `reconnecting`: the connection was lost; backing off or trying again
 * - `closed`: `close()` was called, or the server closed with a code that says not to come
 *   back (`stop` in CLOSE_RULES, e.g. 1008: the client broke the protocol); nothing more happens
 */
export type ConnectionStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'

/**
 * Why `getToken` is being asked: apps may cache, and must return a fresh token on `unauthorized`
 * (after a 4001 close, or when a refresh before expiry got back the token about to expire).
 */
export type TokenReason = 'connect' | 'refresh' | 'unauthorized' | 'request'
export type TokenSource = (ctx: { reason: TokenReason }) => string | null | undefined | Promise<string | null | undefined>

/**
 * The part of the WebSocket interface the client uses: the browser's and `ws`'s both fit.
 * Listeners go through addEventListener (method syntax), which both declare compatibly.
 */
export interface WebSocketLike {
  readonly readyState: number
  send (data: string): void
  close (code?: number, reason?: string): void
  addEventListener (type: 'open' | 'error', listener: (event: unknown) => void): void
  addEventListener (type: 'message', listener: (event: { data: unknown }) => void): void
  addEventListener (type: 'close', listener: (event: { code: number, reason: string }) => void): void
  /** `ws` only: drop the connection without a closing handshake. */
  terminate? (): void
  /** `ws` only: protocol-level pings count as signs of life. */
  on? (event: 'ping', listener: () => void): unknown
}
export type WebSocketConstructor = new (url: string) => WebSocketLike

export interface ReconnectOptions {
  /** Lower bound of every delay (ms). Default 100. */
  minDelayMs?: number
  /** The first backoff window (ms); it doubles per failed attempt. Default 500. */
  baseDelayMs?: number
  /** Upper bound of every delay (ms). Default 30 000. */
  maxDelayMs?: number
  /**
   * After a close that sends many clients away at once (`spread` in CLOSE_RULES: `1001` server
   * shutting down, `4008`, `4009`), the retries until the next `welcome` draw from a window of at least
   * [spreadMinDelayMs, spreadMaxDelayMs] (ms, still bounded by maxDelayMs), so a whole replica's
   * clients do not reach the other replicas within the same half second. Defaults 500 and 5 000.
   */
  spreadMinDelayMs?: number
  spreadMaxDelayMs?: number
}

export interface LogoSyncClientOptions {
  /** The `/sync` WebSocket URL, e.g. `wss://host/sync` (http(s) URLs are turned into ws(s)). */
  url: string
  /** Base URL of the REST API; by default the same origin as `url`, over http(s). */
  apiUrl?: string
  /** Called before each connection, before the token expires and after a `4001` close. */
  getToken?: TokenSource
  /** A WebSocket implementation: the browser's global by default; in Node pass `ws`'s `WebSocket`. */
  WebSocket?: WebSocketConstructor
  /** A fetch implementation; the global one by default. */
  fetch?: typeof globalThis.fetch
  reconnect?: ReconnectOptions
  /** Connect in the constructor (default true). */
  autoConnect?: boolean
  /** Give up on an attempt that has not been welcomed within this time (ms). Default 10 000. */
  connectTimeoutMs?: number
  /** How long to wait for any frame after a `ping` op before calling the connection dead. */
  pongTimeoutMs?: number
  /** Refresh the token this long before it expires (ms, at most a fifth of its lifetime). Default 30 000. */
  tokenRefreshMarginMs?: number
  /** Wait this long before sending `unsubscribe` after the last callback leaves (ms). Default 0. */
  unsubscribeDelayMs?: number
  /** Frames sent per second at most, below the server's SYNC_RATE_LIMIT (default 100). Default 50. */
  maxFramesPerSecond?: number
  /**
   * A channel nothing has used (no listener, poll or request) for this long (ms) is forgotten,
   * with its data, so a long-lived page that browses many channels does not grow without bound.
   * Default 300 000 (5 minutes).
   */
  channelTtlMs?: number
}

export type SyncErrorCode = ErrorCode | 'http_error' | 'network_error' | 'token_expired' | 'protocol_error'

/** An `error` frame, a refused request or a failed REST call, as an Error. */
export class SyncError extends Error {
  readonly channel?: string
  /** HTTP status, for REST failures. */
  readonly status?: number
  /** The server's `code` from a REST error body, e.g. `voting_closed`. */
  readonly serverCode?: string

  constructor (message: string, readonly code: SyncErrorCode, details: { channel?: string, status?: number, serverCode?: string } = {}) {
    super(message)
    this.name = 'SyncError'
    this.channel = details.channel
    this.status = details.status
    this.serverCode = details.serverCode
  }
}

/** What the client holds for one channel. A new object on every change (React compares by identity). */
export interface ChannelState<T = unknown> {
  readonly data: T | undefined
  /** The version held (`null` on the `logos` list and private channels, which are sent whole). */
  readonly version: number | null
  /** `pending` until the first state arrives; `deleted` after a `deleted` change. */
  readonly status: 'pending' | 'ready' | 'deleted'
  /** The server refused the channel (`forbidden`, …), or the last REST read of it failed. */
  readonly error: SyncError | null
  /** A REST read of the channel (revalidate, polling) is in flight. */
  readonly validating: boolean
}

/** `mutate`'s options, as SWR's. */
export interface MutateOptions<T> {
  /** Shown at once, until the mutation settles: a value, or a function of the current data. */
  optimisticData?: T | ((current: T | undefined) => T)
  /** On failure, go back to the server's state (default true); false keeps the optimistic data. */
  rollbackOnError?: boolean
  /** Read the channel over REST once the mutation settled (default true). */
  revalidate?: boolean
  /** Make the mutation's result the channel's data (default true). */
  populateCache?: boolean
}

/** What `mutate` is given: the new data, a promise of it, or a function of the current data returning either. */
export type MutateData<T> = T | Promise<T> | ((current: T | undefined) => T | Promise<T>)

/** What a `subscribe` callback learns besides the data. */
export interface ChannelEvent {
  channel: string
  /** The frame type applied, or `rest` for state fetched over HTTP, `local` for a vote's own result. */
  type: ChannelFrame['type'] | 'rest' | 'local'
  version: number | null
}

export interface ClientEvents {
  status: (status: ConnectionStatus, info: { closeCode?: number, retryInMs?: number }) => void
  welcome: (frame: WelcomeFrame) => void
  /** Who the connection acts as: on every welcome and after an in-band `auth` took. */
  user: (user: WelcomeFrame['user']) => void
  error: (error: SyncError) => void
  /** The estimate of the server's clock changed (offset in ms: server minus local). */
  clock: (offsetMs: number) => void
  /** Every frame received (debugging, tests). */
  frame: (frame: ServerFrame) => void
  /** Every frame sent (debugging, tests). */
  send: (frame: Record<string, unknown>) => void
}
