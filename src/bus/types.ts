// The Bus port: cross-replica fanout of committed changes. Every replica, the publishing one
// included, receives every event through its subscription and delivers it locally.
// Adapters: in-process (embedded default) and Redis pub/sub (scaled).
import type { Logo } from '../domain.js'

export type BusEvent =
  | { kind: 'logo.created', logo: Logo }
  | { kind: 'logo.updated', logo: Logo }
  | { kind: 'logo.deleted', logoId: string, version: number }
  | { kind: 'votes', logoId: string, totalVotes: number, version: number, userId: string, voted: boolean }
  | { kind: 'deadline', deadline: string | null, version: number }

/** What travels on the wire: the event plus who published it and when (for lag metrics). */
export interface BusMessage {
  event: BusEvent
  origin: string
  publishedAt: number
}

export interface Bus {
  readonly kind: 'memory' | 'redis'
  publish (event: BusEvent): Promise<void>
  /** Adds a handler for every message; returns a function that removes it. */
  subscribe (handler: (message: BusMessage) => void): () => void
  /**
   * Called after the bus recovered from a gap in which messages may have been lost
   * (Redis subscriber reconnected). Subscribers re-read state they care about.
   */
  onResync (handler: () => void): () => void
  /**
   * After a publish was lost, the bus tells the other replicas to resync once Redis is back.
   * A gate delays that notice until it resolves (the cache replays the L2 writes it missed, so
   * replicas that resync do not refill from older values). Returns a function that removes it.
   */
  holdResyncNotice (gate: () => Promise<void>): () => void
  ping (): Promise<void>
  close (): Promise<void>
}
