// @logo-sync/client: the isomorphic SDK (browser WebSocket, or `ws` in Node). The wire
// vocabulary in full (codes and their meaning) is `@logo-sync/client/protocol`.
export { LogoSyncClient } from './client.js'
export {
  channelForDeadline, channelForLogo, channelForLogoVotes, channelForLogos, channelForPresence, channelForUserVotes, channelName, parseChannel,
  type Channel, type ChannelKind
} from './protocol.js'
export type { ChannelRef } from './channels.js'
export { backoffDelay, tokenClaims, tokenExpiry } from './timing.js'
export {
  SyncError,
  type ChannelEvent, type ChannelFrame, type ChannelState, type ClientEvents, type ConnectionStatus, type ErrorCode,
  type Logo, type LogoSyncClientOptions, type MutateData, type MutateOptions, type ReconnectOptions, type ServerFrame, type SyncErrorCode, type TokenReason,
  type TokenSource, type VoteCount, type VoteResult, type Voting, type WebSocketConstructor, type WebSocketLike,
  type WelcomeFrame
} from './types.js'
