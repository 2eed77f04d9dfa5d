// The Bus port: cross-replica fanout of committed changes. Every replica, the publishing one
// included, receives every event through its subscription and delivers it locally.
// Adapters: in-process (embedded default), Redis pub/sub (scaled with Redis) and PostgreSQL
// LISTEN/NOTIFY (scaled on PostgreSQL alone, publishing inside the store's transactions).
import type { BusEvent } from '../changes.js'

/** What a committed write changed (defined with the changes themselves, in src/changes.ts). */
export type { BusEvent } from '../changes.js'

/** Where an adapter logs (a pino child in the app). */
export interface BusLog {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

/** What travels on the wire: the event plus who published it and when (for lag metrics). */
export interface BusMessage {
  event: BusEvent
  origin: string
  publishedAt: number
}

export interface Bus {
  readonly kind: 'memory' | 'redis' | 'postgres'
  /** Sends an event to every replica now, outside any store transaction. */
  publish (event: BusEvent): Promise<void>
  /**
   * The bus's step of the write path (src/logo-service.ts), after the store committed `event`
   * and the cache took it. The in-process and Redis buses publish it here; the PostgreSQL bus
   * already sent it inside the store's transaction (a store transaction step), so it has
   * nothing left to do. Rejects when the publish failed (the change is committed regardless).
   */
  afterCommit (event: BusEvent): Promise<void>
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
