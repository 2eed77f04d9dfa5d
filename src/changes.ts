// What a committed write changed, as the bus carries it. Two places describe a change: the
// service's write path (cache write-through, then the bus) and the PostgreSQL store's
// transaction steps (the LISTEN/NOTIFY bus publishes before COMMIT). Both build it here, so
// the two can never describe one write differently. It sits below both ports: the store's
// transaction steps and the bus carry these changes, and neither defines them.
import type { DeadlineState, Logo, VoteOutcome } from './domain.js'

/** One committed change, as every replica hears of it. */
export type BusEvent =
  | { kind: 'logo.created', logo: Logo }
  | { kind: 'logo.updated', logo: Logo }
  | { kind: 'logo.deleted', logoId: string, version: number }
  | { kind: 'votes', logoId: string, totalVotes: number, version: number, userId: string, voted: boolean }
  | { kind: 'deadline', deadline: string | null, version: number }

export const changeOf = {
  created: (logo: Logo): BusEvent => ({ kind: 'logo.created', logo }),
  updated: (logo: Logo): BusEvent => ({ kind: 'logo.updated', logo }),
  deleted: (deleted: { _id: string, version: number }): BusEvent => ({ kind: 'logo.deleted', logoId: deleted._id, version: deleted.version }),
  /** Null for a repeat (nothing changed, nothing to announce). */
  vote: (outcome: VoteOutcome, userId: string): BusEvent | null => outcome.changed
    ? { kind: 'votes', logoId: outcome.logoId, totalVotes: outcome.totalVotes, version: outcome.version, userId, voted: outcome.voted }
    : null,
  deadline: (state: DeadlineState): BusEvent => ({ kind: 'deadline', deadline: state.deadline, version: state.version })
}
