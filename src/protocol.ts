// The /sync wire protocol: one definition shared by the server's frame validator, the docs
// and the client SDK. Keep names in step with ../shared/DESIGN.md and docs/protocol.md.
import { Type, type Static } from 'typebox'
import type { Logo } from './domain.js'

const RequestId = Type.Union([Type.String({ maxLength: 64 }), Type.Integer()])
const ChannelName = Type.String({ minLength: 1, maxLength: 200 })

export const SubscribeOp = Type.Object({
  op: Type.Literal('subscribe'),
  channel: ChannelName,
  since: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  id: Type.Optional(RequestId)
}, { additionalProperties: false })

export const UnsubscribeOp = Type.Object({
  op: Type.Literal('unsubscribe'),
  channel: ChannelName,
  id: Type.Optional(RequestId)
}, { additionalProperties: false })

export const AuthOp = Type.Object({
  op: Type.Literal('auth'),
  token: Type.String({ minLength: 1, maxLength: 8192 }),
  id: Type.Optional(RequestId)
}, { additionalProperties: false })

export const PingOp = Type.Object({
  op: Type.Literal('ping'),
  id: Type.Optional(RequestId)
}, { additionalProperties: false })

export const ClientFrame = Type.Union([SubscribeOp, UnsubscribeOp, AuthOp, PingOp])
export type ClientFrame = Static<typeof ClientFrame>
export type SubscribeFrame = Static<typeof SubscribeOp>

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

export type RequestId = string | number

export interface WelcomeFrame {
  type: 'welcome'
  connectionId: string
  serverTime: string
  user: { sub: string, role: 'user' | 'admin' } | null
  heartbeatMs: number
}
/** Answer to a successful `auth` op (our addition: the design leaves the reply open). */
export interface AuthenticatedFrame { type: 'authenticated', id?: RequestId, user: { sub: string, role: 'user' | 'admin' }, expiresAt: string | null }
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
export type ServerFrame = WelcomeFrame | AuthenticatedFrame | SubscribedFrame | UnsubscribedFrame | PongFrame | ErrorFrame | ChannelFrame

/** Data of the `votes` change on the `logos` list: counts batched per conflation window. */
export type VotesBatch = Record<string, { totalVotes: number, version: number }>

/** What each channel's snapshot carries. */
export interface ChannelData {
  logos: Logo[]
  logo: Logo
  logoVotes: number
  deadline: string | null
  userVotes: string[]
}
