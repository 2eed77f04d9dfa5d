// The PresenceBackend port: where each replica's count of people present is kept, so every
// replica can add up everyone's. Adapters: in-process (embedded: one replica), Redis (scaled),
// PostgreSQL (scaled on PostgreSQL alone). Behaviour and bounds: docs/protocol.md (Presence).

/**
 * Every live replica's member count, as of one moment of the backend. `seq` orders views: a
 * replica hears views both as answers to its own reports and as notifications, on different
 * connections, and applies only the newest.
 */
export interface PresenceView {
  seq: number
  members: Record<string, number>
}

export interface PresenceBackend {
  readonly kind: 'memory' | 'redis' | 'postgres'
  /**
   * Sets this replica's count (0 removes its entry) and refreshes its entry's time to live, drops
   * the entries of replicas that stopped refreshing theirs, and returns the view after that.
   * When anything changed, every replica's watch() handlers get the same view.
   */
  report (replicaId: string, members: number): Promise<PresenceView>
  /** Calls `handler` with every view any replica's report changed, its own included. */
  watch (handler: (view: PresenceView) => void): () => void
  /** Calls `handler` after notifications may have been lost (a reconnect): report again to catch up. */
  onGap (handler: () => void): () => void
  close (): Promise<void>
}
