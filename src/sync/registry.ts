// The channel registry: which local connections are subscribed to which channel.
import type { SyncConnection } from './connection.js'
import type { SyncStats } from './stats.js'

export class ChannelRegistry {
  private readonly channels = new Map<string, Set<SyncConnection>>()

  constructor (private readonly stats: SyncStats) {}

  has (channel: string): boolean {
    return (this.channels.get(channel)?.size ?? 0) > 0
  }

  subscribers (channel: string): ReadonlySet<SyncConnection> | undefined {
    return this.channels.get(channel)
  }

  /** Channels with at least one local subscriber. */
  names (): IterableIterator<string> {
    return this.channels.keys()
  }

  join (channel: string, conn: SyncConnection): void {
    let subscribers = this.channels.get(channel)
    if (!subscribers) {
      subscribers = new Set()
      this.channels.set(channel, subscribers)
      this.stats.channels++
    }
    if (subscribers.has(conn)) return
    subscribers.add(conn)
    this.stats.subscriptions++
  }

  /** Returns true when the channel has no local subscriber left. */
  leave (channel: string, conn: SyncConnection): boolean {
    const subscribers = this.channels.get(channel)
    if (!subscribers?.delete(conn)) return false
    this.stats.subscriptions--
    if (subscribers.size > 0) return false
    this.channels.delete(channel)
    this.stats.channels--
    return true
  }
}
