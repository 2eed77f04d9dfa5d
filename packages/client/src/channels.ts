// The channel vocabulary is the protocol's (./protocol.ts, shared with the server); the SDK adds
// one case: a name it has no rules for (`other`), which it still subscribes to and keeps as is.
import { parseChannel, type Channel } from './protocol.js'

export type ChannelRef = Channel | { kind: 'other', name: string }

/** What a channel name refers to; `other` for names the protocol does not define. */
export const channelRef = (name: string): ChannelRef => parseChannel(name) ?? { kind: 'other', name }
