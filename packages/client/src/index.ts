// logo-sync/client: the isomorphic SDK (browser WebSocket, or `ws` in Node).
export { LogoSyncClient } from './client.js'
export {
  channelForDeadline, channelForLogo, channelForLogoVotes, channelForLogos, channelForUserVotes, parseChannel,
  type ChannelRef
} from './channels.js'
export { backoffDelay, tokenExpiry } from './timing.js'
export {
  SyncError,
  type ChannelEvent, type ChannelFrame, type ChannelState, type ClientEvents, type ConnectionStatus, type ErrorCode,
  type Logo, type LogoSyncClientOptions, type ReconnectOptions, type ServerFrame, type SyncErrorCode, type TokenReason,
  type TokenSource, type VoteCount, type VoteResult, type Voting, type WebSocketConstructor, type WebSocketLike,
  type WelcomeFrame
} from './types.js'
