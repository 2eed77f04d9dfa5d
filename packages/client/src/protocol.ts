// The /sync wire vocabulary, shared by the server and this SDK: the data each channel carries,
// the frames, the error and close codes. No dependencies at all, so a browser bundle and the
// server import the same definitions (the server's TypeBox frame schemas live in its
// src/protocol.ts and are checked against these types). See docs/protocol.md.

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

/** WebSocket close codes, in the spirit of Centrifugo's: 1xxx standard, 4xxx ours. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  messageTooBig: 1009,
  unauthorized: 4001,
  rateLimited: 4008,
  slowConsumer: 4009
} as const
export type CloseCode = typeof CloseCode[keyof typeof CloseCode]

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
