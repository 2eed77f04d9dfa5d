// The channel vocabulary (names, parsing, read access, whole or versioned) is defined once, in
// the client package's protocol module, which the SDK shares; the server's names for it.
export {
  channelForDeadline as DEADLINE_CHANNEL, channelForLogos as LIST_CHANNEL,
  channelForPresence as PRESENCE_CHANNEL,
  channelForLogo, channelForLogoVotes, channelForUserVotes, isWholeChannel, parseChannel, readAccess,
  type Channel, type Reader, type VersionedChannel, type WholeChannel
} from '@logo-sync/client/protocol'
