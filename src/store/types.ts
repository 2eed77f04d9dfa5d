// The Store port: what the rest of the code needs from persistence, nothing more.
// Adapters: SQLite (embedded default) and PostgreSQL (scaled). One conformance suite
// (test/store.conformance.ts) runs unchanged against both.
import type { CreateLogoInput, DeadlineState, Logo, UpdateLogoInput, VoteCount, VoteResult } from '../domain.js'

/** A cast or retracted vote, plus whether it changed anything (a repeat does not). */
export interface VoteOutcome extends VoteResult {
  changed: boolean
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres'
  listLogos (): Promise<Logo[]>
  getLogo (id: string): Promise<Logo | null>
  createLogo (input: CreateLogoInput): Promise<Logo>
  /** null when the logo does not exist. */
  updateLogo (id: string, patch: UpdateLogoInput): Promise<Logo | null>
  /** The deleted logo's id and final version (its version + 1), or null when it did not exist. */
  deleteLogo (id: string): Promise<{ _id: string, version: number } | null>
  /** Idempotent; throws NotFoundError or VotingClosedError. Count and version move in one transaction. */
  castVote (logoId: string, userId: string): Promise<VoteOutcome>
  retractVote (logoId: string, userId: string): Promise<VoteOutcome>
  getVotes (logoId: string): Promise<VoteCount | null>
  userVotes (userId: string): Promise<string[]>
  getDeadline (): Promise<DeadlineState>
  setDeadline (deadline: string | null): Promise<DeadlineState>
  countLogos (): Promise<number>
  /** Throws when the store cannot be reached. */
  ping (): Promise<void>
  close (): Promise<void>
}

export class NotFoundError extends Error {
  readonly code = 'not_found'
  constructor (what: string) { super(`${what} not found`); this.name = 'NotFoundError' }
}

export class VotingClosedError extends Error {
  readonly code = 'voting_closed'
  constructor (readonly deadline: string) { super(`Voting closed at ${deadline}`); this.name = 'VotingClosedError' }
}
