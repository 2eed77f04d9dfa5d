// The server's side of the /sync wire protocol: TypeBox schemas that validate what clients
// send. The vocabulary itself (frames, codes, channel data) is defined once, without
// dependencies, in the client package (@logo-sync/client/protocol), so the browser SDK shares
// it; the schemas here are checked against its types at compile time. See docs/protocol.md.
import type * as Wire from '@logo-sync/client/protocol'
import { Type, type Static } from 'typebox'
import type { Logo, Role, VoteCount, VoteResult, Voting } from './domain.js'

export {
  CloseCode, ErrorCode,
  type AuthenticatedFrame, type ChannelFrame, type ErrorFrame, type PongFrame, type RequestId, type ServerFrame,
  type SubscribedFrame, type UnsubscribedFrame, type VotesBatch, type WelcomeFrame
} from '@logo-sync/client/protocol'

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

/** True when A and B are the same type (each assignable to the other). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
type Assert<T extends true> = T
/** Compile-time: the schemas accept exactly the frames the shared vocabulary describes. */
export type ClientFramesMatchVocabulary = Assert<Same<ClientFrame, Wire.ClientFrame>>
/** Compile-time: the REST schemas (src/domain.ts) give exactly the data shapes the SDK is typed with. */
export type DataMatchesVocabulary = Assert<Same<[Logo, Role, VoteCount, VoteResult, Voting], [Wire.Logo, Wire.Role, Wire.VoteCount, Wire.VoteResult, Wire.Voting]>>
