// Channel names, as in the design: `logos`, `logos.<id>`, `logos.<id>.votes`, `voting.deadline`,
// `users.<sub>.votes`. Ids never contain dots (see LOGO_ID_PATTERN / USER_ID_PATTERN).

export const channelForLogos = 'logos'
export const channelForDeadline = 'voting.deadline'
export const channelForLogo = (id: string) => `logos.${id}`
export const channelForLogoVotes = (id: string) => `logos.${id}.votes`
export const channelForUserVotes = (sub: string) => `users.${sub}.votes`

export type ChannelRef =
  | { kind: 'logos' }
  | { kind: 'logo', logoId: string }
  | { kind: 'logoVotes', logoId: string }
  | { kind: 'deadline' }
  | { kind: 'userVotes', sub: string }
  | { kind: 'other' }

/** What a channel name refers to; `other` for names the SDK has no special rules for. */
export function parseChannel (channel: string): ChannelRef {
  if (channel === channelForLogos) return { kind: 'logos' }
  if (channel === channelForDeadline) return { kind: 'deadline' }
  const parts = channel.split('.')
  if (parts[0] === 'logos' && parts.length === 2 && parts[1]) return { kind: 'logo', logoId: parts[1] }
  if (parts[0] === 'logos' && parts.length === 3 && parts[1] && parts[2] === 'votes') return { kind: 'logoVotes', logoId: parts[1] }
  if (parts[0] === 'users' && parts.length === 3 && parts[1] && parts[2] === 'votes') return { kind: 'userVotes', sub: parts[1] }
  return { kind: 'other' }
}

/** Channels sent whole on every (re)subscribe, without one version for the whole. */
export const isWholeChannel = (ref: ChannelRef) => ref.kind === 'logos' || ref.kind === 'userVotes'
