// The /sync wire vocabulary, defined once for the server and this SDK: channel kinds (names,
// parsing, read access, whole or versioned), the data they carry, the frames, the error codes
// and the close codes with what each means for a client. No dependencies at all, so a browser
// bundle and the server import the same definitions (the server's TypeBox frame schemas live in
// its src/protocol.ts and are checked against these types). See docs/protocol.md.

// ---- data shapes ------------------------------------------------------------------------------

export type Role = 'user' | 'admin'

export interface Logo {
  _id: string
  title: string
  imageUrl: string
  description?: string
  author?: string
  totalVotes: number
  version: number
  /** ISO 8601 */
  createdAt: string
  /** ISO 8601 */
  updatedAt: string
}

/** `POST`/`DELETE /logos/:id/votes`. */
export interface VoteResult {
  logoId: string
  totalVotes: number
  voted: boolean
  version: number
}

/** `GET /logos/:id/votes`. */
export interface VoteCount {
  logoId: string
  totalVotes: number
  version: number
}

/** `GET /voting`. */
export interface Voting {
  deadline: string | null
  open: boolean
  serverTime: string
}

// ---- channels ---------------------------------------------------------------------------------

/** Logo ids appear inside channel names (`logos.<id>`), so they are kept to a safe alphabet. */
export const LOGO_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$'
/** User ids (`sub`) appear in `users.<sub>.votes`; same rule, so a sub can never add a dot. */
export const USER_ID_PATTERN = '^[A-Za-z0-9_@+-]{1,64}$'

/**
 * Who may read a channel: anyone; only the user its `sub` names (or an admin); anyone signed
 * in; only admins.
 */
export type ReadRule = 'public' | 'owner' | 'signedIn' | 'admin'

export interface ChannelRule {
  /** Dot-separated segments; `{logoId}` and `{sub}` stand for an id (LOGO_ID_PATTERN, USER_ID_PATTERN). */
  readonly pattern: string
  /**
   * Sent whole on every (re)subscribe, with `version: null`: the channel has no single version
   * (the list's items carry their own; a user's votes are a set). Otherwise the channel is
   * versioned: `since` on subscribe, and anything not newer than the version held is dropped.
   */
  readonly whole: boolean
  readonly read: ReadRule
}

/**
 * Every channel kind there is. Adding one is an entry here plus its handler on the server (what
 * a subscribe reads and which changes it carries, src/sync); names, parsing, access and the
 * whole/versioned rule follow from the entry on both sides.
 */
export const CHANNELS = {
  /** `Logo[]`; changes `created`/`updated`/`deleted` per item and `votes` batches. */
  logos: { pattern: 'logos', whole: true, read: 'public' },
  /** `Logo`; `deleted` when it goes. */
  logo: { pattern: 'logos.{logoId}', whole: false, read: 'public' },
  /** `number`, conflated. */
  logoVotes: { pattern: 'logos.{logoId}.votes', whole: false, read: 'public' },
  /** ISO string or `null`. */
  deadline: { pattern: 'voting.deadline', whole: false, read: 'public' },
  /** `string[]` (logo ids); private. */
  userVotes: { pattern: 'users.{sub}.votes', whole: true, read: 'owner' },
  /**
   * `number`: how many connections are subscribed to it across every replica (each open gallery
   * page is one), the subscriber included; conflated. No version: sent whole.
   */
  presence: { pattern: 'presence.logos', whole: true, read: 'public' }
} as const satisfies Record<string, ChannelRule>

export type ChannelKind = keyof typeof CHANNELS

const PARAM_PATTERNS: Record<string, RegExp> = { logoId: new RegExp(LOGO_ID_PATTERN), sub: new RegExp(USER_ID_PATTERN) }

type ParamNames<P extends string> = P extends `${string}{${infer N}}${infer Rest}` ? N | ParamNames<Rest> : never
/** The ids a kind's name carries, e.g. `{ logoId: string }` for `logo`. */
export type ChannelParams<K extends ChannelKind> = { [N in ParamNames<typeof CHANNELS[K]['pattern']>]: string }
/** A parsed channel name: its kind, the name, and the ids in it. */
export type Channel = { [K in ChannelKind]: { kind: K, name: string } & ChannelParams<K> }[ChannelKind]

/** The name of a channel of `kind` (ids are not checked here: parseChannel does that). */
export function channelName<K extends ChannelKind> (kind: K, params: ChannelParams<K>): string {
  return CHANNELS[kind].pattern.replace(/\{(\w+)\}/g, (_, p: string) => (params as Record<string, string>)[p])
}

export const channelForLogos = channelName('logos', {})
export const channelForDeadline = channelName('deadline', {})
export const channelForLogo = (logoId: string) => channelName('logo', { logoId })
export const channelForLogoVotes = (logoId: string) => channelName('logoVotes', { logoId })
export const channelForUserVotes = (sub: string) => channelName('userVotes', { sub })
export const channelForPresence = channelName('presence', {})

const MATCHERS = Object.entries(CHANNELS).map(([kind, rule]) => ({ kind, segments: rule.pattern.split('.') }))

/** The channel a name stands for, or null for anything that is not one (`unknown_channel`). */
export function parseChannel (name: string): Channel | null {
  const parts = name.split('.')
  for (const { kind, segments } of MATCHERS) {
    if (segments.length !== parts.length) continue
    const channel: Record<string, string> = { kind, name }
    const fits = segments.every((segment, i) => {
      if (!segment.startsWith('{')) return segment === parts[i]
      const param = segment.slice(1, -1)
      channel[param] = parts[i]
      return PARAM_PATTERNS[param].test(parts[i])
    })
    if (fits) return channel as unknown as Channel
  }
  return null
}

/** The kinds sent whole, and the versioned ones (ChannelRule.whole), as types. */
export type WholeKind = { [K in ChannelKind]: typeof CHANNELS[K]['whole'] extends true ? K : never }[ChannelKind]
export type VersionedKind = Exclude<ChannelKind, WholeKind>
/**
 * A channel of a whole kind, or of a versioned one. Code that reads or handles each kind takes
 * one of these and switches over `kind` to the end (`const none: never = channel`), so a kind
 * added to CHANNELS without its handler does not compile.
 */
export type WholeChannel = Extract<Channel, { kind: WholeKind }>
export type VersionedChannel = Extract<Channel, { kind: VersionedKind }>

/** Sent whole, without one version (see ChannelRule.whole); false for a kind not defined here. */
export function isWholeChannel (channel: Channel): channel is WholeChannel
export function isWholeChannel (channel: { kind: string }): boolean
export function isWholeChannel (channel: { kind: string }): boolean {
  return (CHANNELS as Record<string, ChannelRule>)[channel.kind]?.whole ?? false
}

/** Who is asking to read: the connection's identity. */
export interface Reader {
  sub: string
  role: Role
}

/** Read access to a channel; `unauthorized` means a token would be needed, `forbidden` that this one will not do. */
export function readAccess (channel: Channel, reader: Reader | null): 'ok' | 'unauthorized' | 'forbidden' {
  const rule = CHANNELS[channel.kind].read as ReadRule
  if (rule === 'public') return 'ok'
  if (!reader) return 'unauthorized'
  if (rule === 'signedIn' || reader.role === 'admin') return 'ok'
  if (rule === 'owner' && 'sub' in channel && channel.sub === reader.sub) return 'ok'
  return 'forbidden'
}

// ---- codes ------------------------------------------------------------------------------------

/** `code` of an `error` frame. */
export const ErrorCode = {
  badRequest: 'bad_request',
  unknownChannel: 'unknown_channel',
  forbidden: 'forbidden',
  unauthorized: 'unauthorized',
  rateLimited: 'rate_limited',
  tooManySubscriptions: 'too_many_subscriptions'
} as const
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode]

/** WebSocket close codes: 1xxx standard, 4xxx ours. What each means: CLOSE_RULES. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  noStatus: 1005,
  /** Never sent: the peer vanished (no close frame), e.g. it missed a heartbeat. */
  abnormal: 1006,
  invalidPayload: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  unauthorized: 4001,
  rateLimited: 4008,
  slowConsumer: 4009
} as const
export type CloseCode = typeof CloseCode[keyof typeof CloseCode]

/**
 * What a close tells a client to do:
 * - `backoff`: reconnect after an exponential backoff with full jitter, resubscribe with `since`;
 * - `spread`: the same, but the close sent a whole crowd away at once (a replica shutting down or
 *   overloaded), so the retries draw from a wider window and do not land together elsewhere;
 * - `stop`: do not reconnect: the client broke the protocol, and the same client would again.
 */
export type Reconnect = 'backoff' | 'spread' | 'stop'

export interface CloseRule {
  readonly reconnect: Reconnect
  /** Get a fresh token before reconnecting. */
  readonly newToken?: true
  /** Send more slowly from now on. */
  readonly slowDown?: true
  readonly meaning: string
}

/** Every close code the server sends or records, with what it means for a client. */
export const CLOSE_RULES: { readonly [C in CloseCode]: CloseRule } = {
  1000: { reconnect: 'backoff', meaning: 'closed normally' },
  1001: { reconnect: 'spread', meaning: 'server shutting down (sent to every client before the process exits)' },
  1002: { reconnect: 'stop', meaning: 'WebSocket protocol error' },
  1003: { reconnect: 'stop', meaning: 'unsupported data' },
  1005: { reconnect: 'backoff', meaning: 'closed without a code' },
  1006: { reconnect: 'backoff', meaning: 'connection lost without a close frame (network, missed heartbeat)' },
  1007: { reconnect: 'stop', meaning: 'a text frame that is not UTF-8' },
  1008: { reconnect: 'stop', meaning: 'kept sending malformed frames' },
  1009: { reconnect: 'stop', meaning: 'frame too large' },
  1011: { reconnect: 'backoff', meaning: 'server error' },
  4001: { reconnect: 'backoff', newToken: true, meaning: 'token invalid or expired' },
  4008: { reconnect: 'spread', slowDown: true, meaning: 'rate limit exceeded' },
  4009: { reconnect: 'spread', meaning: 'too slow to keep up' }
}

/**
 * What any close code means for a client. Codes not in CLOSE_RULES go by range, as Centrifugo
 * groups its own: 3000–3499 and 4000–4499 reconnect, 3500–3999 and 4500–4999 stop; anything
 * else reconnects. No code (a connection given up as dead) reads as 1006.
 */
export function closeRule (code: number | undefined): CloseRule {
  const known = (CLOSE_RULES as Record<number, CloseRule | undefined>)[code ?? CloseCode.abnormal]
  if (known) return known
  const c = code ?? 0
  const terminal = (c >= 3500 && c <= 3999) || (c >= 4500 && c <= 4999)
  return terminal ? { reconnect: 'stop', meaning: 'closed for good by the server' } : { reconnect: 'backoff', meaning: 'closed' }
}

// ---- frames -----------------------------------------------------------------------------------

export type RequestId = string | number

export interface SubscribeFrame { op: 'subscribe', channel: string, since?: number | null, id?: RequestId }
export interface UnsubscribeFrame { op: 'unsubscribe', channel: string, id?: RequestId }
export interface AuthFrame { op: 'auth', token: string, id?: RequestId }
export interface PingFrame { op: 'ping', id?: RequestId }
/** What a client sends. */
export type ClientFrame = SubscribeFrame | UnsubscribeFrame | AuthFrame | PingFrame

export interface WelcomeFrame {
  type: 'welcome'
  connectionId: string
  serverTime: string
  user: { sub: string, role: Role } | null
  heartbeatMs: number
}
/** Answer to a successful `auth` op (our addition: the design leaves the reply open). */
export interface AuthenticatedFrame { type: 'authenticated', id?: RequestId, user: { sub: string, role: Role }, expiresAt: string | null }
export interface SubscribedFrame { type: 'subscribed', id?: RequestId, channel: string, version: number | null }
export interface UnsubscribedFrame { type: 'unsubscribed', id?: RequestId, channel: string }
export interface PongFrame { type: 'pong', id?: RequestId, serverTime: string }
export interface ErrorFrame { type: 'error', id?: RequestId, channel?: string, code: ErrorCode, message: string }
/** Snapshots and changes share one shape: the seed's `{ channel, type, data }` plus `version`. */
export interface ChannelFrame<T = unknown> {
  channel: string
  type: 'snapshot' | 'created' | 'updated' | 'deleted' | 'votes'
  version: number | null
  data: T
}
/** What the server sends. */
export type ServerFrame = WelcomeFrame | AuthenticatedFrame | SubscribedFrame | UnsubscribedFrame | PongFrame | ErrorFrame | ChannelFrame

/** Data of the `votes` change on the `logos` list: counts batched per conflation window. */
export type VotesBatch = Record<string, { totalVotes: number, version: number }>
