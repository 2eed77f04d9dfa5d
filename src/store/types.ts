// The Store port: what the rest of the code needs from persistence, nothing more.
// Adapters: SQLite (embedded default) and PostgreSQL (scaled). One conformance suite
// (test/store.conformance.ts) runs unchanged against both.
import type { BusEvent } from '../changes.js'
import type { CreateLogoInput, DeadlineState, Logo, UpdateLogoInput, VoteCount, VoteOutcome } from '../domain.js'

export type { VoteOutcome } from '../domain.js'

/** What a write transaction offers the steps that join it. */
export interface StoreTransaction {
  /** NOTIFY inside the transaction: listeners get it if and only if the transaction commits. */
  notify (channel: string, payload: string): Promise<void>
}

/**
 * Work that joins every write transaction: it runs after the transaction's changes and before
 * its COMMIT, with every change the transaction made (one today; a batch once votes are
 * committed in groups). If it throws, the transaction rolls back and the write fails.
 */
export type TransactionStep = (changes: readonly BusEvent[], tx: StoreTransaction) => Promise<void>

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
  /**
   * Only on stores whose transactions can carry more work (PostgreSQL): adds a step to every
   * write transaction. The PostgreSQL bus publishes through one. Returns a function that removes it.
   */
  addTransactionStep? (step: TransactionStep): () => void
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

/**
 * The store cannot be reached (refused, reset, timed out, shutting down, read-only) or would not
 * do it now (a statement or lock wait it cancelled): trying again later will do. Answered as 503
 * with Retry-After (src/errors.ts). Almost always nothing was changed, but not always: a write
 * whose connection was lost while its COMMIT was on the wire may have been committed (the answer
 * was lost, not the transaction), and no client can tell. So the message claims nothing either
 * way. Votes and retractions are idempotent, so retrying them is safe.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'store_unavailable'
  constructor (readonly retryAfterSeconds = 5, options?: { cause?: unknown }) {
    super('The database is unavailable; the request may not have been applied, try again shortly', options)
    this.name = 'StoreUnavailableError'
  }
}
