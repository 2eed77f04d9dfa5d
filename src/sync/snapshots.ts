// Reading a channel's current state for a (re)subscribe or a resync, through the logo service
// (and its cache), never older than what this replica already knows from the bus.
import type { DeadlineState, Logo, VoteCount } from '../domain.js'
import type { VersionedChannel } from './channels.js'
import type { ChangeFeed } from './feed.js'

/** What the hub reads; `fastify.logos` provides it. */
export interface SyncReads {
  listLogos (): Promise<Logo[]>
  getLogo (id: string): Promise<Logo | null>
  getVotes (id: string): Promise<VoteCount | null>
  getDeadline (): Promise<DeadlineState>
  userVotes (sub: string): Promise<string[]>
}

export interface VersionedState {
  /** `deleted` for a logo that does not exist (any more). */
  type: 'snapshot' | 'deleted'
  version: number | null
  data: unknown
}

const gone = (logoId: string): VersionedState => ({ type: 'deleted', version: null, data: { _id: logoId } })

/** State of `logos.<id>`, `logos.<id>.votes` or `voting.deadline`. */
export async function readVersioned (channel: VersionedChannel, reads: SyncReads, feed: ChangeFeed): Promise<VersionedState> {
  switch (channel.kind) {
    case 'logo': {
      const logo = await reads.getLogo(channel.logoId)
      if (!logo) return gone(channel.logoId)
      feed.logos.observeRead(logo)
      const freshest = feed.logos.freshest(logo)
      return { type: 'snapshot', version: freshest.version, data: freshest }
    }
    case 'logoVotes': {
      const count = await reads.getVotes(channel.logoId)
      if (!count) return gone(channel.logoId)
      const freshest = feed.logos.votesNewerThan(channel.logoId, count.version) ?? count
      return { type: 'snapshot', version: freshest.version, data: freshest.totalVotes }
    }
    case 'deadline': {
      const stored = await reads.getDeadline()
      const freshest = feed.deadline && feed.deadline.version > stored.version ? feed.deadline : stored
      return { type: 'snapshot', version: freshest.version, data: freshest.deadline }
    }
    default: {
      // Every versioned kind has its case above: a new one does not compile until it has.
      const none: never = channel
      throw new Error(`no reader for ${(none as VersionedChannel).name}`)
    }
  }
}

/** The `logos` list, each item no older than the one this replica holds. */
export async function readList (reads: SyncReads, feed: ChangeFeed): Promise<Logo[]> {
  const items = await reads.listLogos()
  const out: Logo[] = []
  for (const item of items) {
    if (feed.logos.isDeleted(item._id)) continue
    feed.logos.observeRead(item)
    out.push(feed.logos.freshest(item))
  }
  return out
}
