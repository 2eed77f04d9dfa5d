// The channel registry's vocabulary: which names exist, what they carry, who may read them.
import { LOGO_ID_PATTERN, USER_ID_PATTERN } from '../domain.js'

export type Channel =
  | { kind: 'logos', name: string }
  | { kind: 'logo', name: string, logoId: string }
  | { kind: 'logoVotes', name: string, logoId: string }
  | { kind: 'deadline', name: string }
  | { kind: 'userVotes', name: string, sub: string }

export interface Reader {
  sub: string
  role: 'user' | 'admin'
}

export const LIST_CHANNEL = 'logos'
export const DEADLINE_CHANNEL = 'voting.deadline'
export const channelForLogo = (logoId: string) => `logos.${logoId}`
export const channelForLogoVotes = (logoId: string) => `logos.${logoId}.votes`
export const channelForUserVotes = (sub: string) => `users.${sub}.votes`

const logoId = new RegExp(LOGO_ID_PATTERN)
const userId = new RegExp(USER_ID_PATTERN)

/** The channel a name stands for, or null for anything that is not one of ours (`unknown_channel`). */
export function parseChannel (name: string): Channel | null {
  if (name === LIST_CHANNEL) return { kind: 'logos', name }
  if (name === DEADLINE_CHANNEL) return { kind: 'deadline', name }
  const parts = name.split('.')
  if (parts[0] === 'logos' && logoId.test(parts[1] ?? '')) {
    if (parts.length === 2) return { kind: 'logo', name, logoId: parts[1] }
    if (parts.length === 3 && parts[2] === 'votes') return { kind: 'logoVotes', name, logoId: parts[1] }
  }
  if (parts.length === 3 && parts[0] === 'users' && parts[2] === 'votes' && userId.test(parts[1])) {
    return { kind: 'userVotes', name, sub: parts[1] }
  }
  return null
}

/**
 * Whole channels have no single version: the list (items carry their own) and a user's votes.
 * They are sent whole on every (re)subscribe, with `version: null`.
 */
export const isWholeChannel = (channel: Channel) => channel.kind === 'logos' || channel.kind === 'userVotes'

/** Read access: everything is public except `users.<sub>.votes`, which is that user's or an admin's. */
export function readAccess (channel: Channel, reader: Reader | null): 'ok' | 'unauthorized' | 'forbidden' {
  if (channel.kind !== 'userVotes') return 'ok'
  if (!reader) return 'unauthorized'
  return reader.sub === channel.sub || reader.role === 'admin' ? 'ok' : 'forbidden'
}
