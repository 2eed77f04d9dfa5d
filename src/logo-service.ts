// The one path every mutation takes: store commit, then the cache, then the bus.
// REST routes and /sync snapshots read through here too, so the order is kept in one place.
// Which bus carries the change is not asked here: a bus that publishes inside the store's
// transaction (PostgreSQL NOTIFY) has already done so when the commit returns, and its
// afterCommit step has nothing left to do (docs/architecture.md, "The write path").
import type { Bus, BusEvent } from './bus/types.js'
import type { LogoCache } from './cache/logo-cache.js'
import { changeOf } from './changes.js'
import type { CreateLogoInput, DeadlineState, Logo, UpdateLogoInput, VoteCount } from './domain.js'
import type { Store, VoteOutcome } from './store/types.js'

export interface LogoServiceDeps {
  store: Store
  bus: Bus
  /**
   * Reads go through it, writes through it (after the commit, before the publish). Values it
   * returns are shared and frozen.
   */
  cache: LogoCache
  /** Logs a publish failure: the write is committed, the bus is best effort (clients resync). */
  onPublishError?: (err: unknown, event: BusEvent) => void
}

export function createLogoService ({ store, bus, cache, onPublishError }: LogoServiceDeps) {
  /** The commit is done: write it through both cache levels, then the bus's after-commit step. */
  async function publish (event: BusEvent): Promise<void> {
    await cache.writeThrough(event)
    try {
      await bus.afterCommit(event)
    } catch (err) {
      onPublishError?.(err, event)
    }
  }

  async function afterVote (outcome: VoteOutcome, userId: string): Promise<VoteOutcome> {
    const event = changeOf.vote(outcome, userId)
    if (event) await publish(event)
    return outcome
  }

  return {
    listLogos: (): Promise<Logo[]> => cache.listLogos(),
    getLogo: (id: string): Promise<Logo | null> => cache.getLogo(id),
    /** From the logo's entry: a vote bumps the logo's version, so count and version travel together. */
    async getVotes (id: string): Promise<VoteCount | null> {
      const logo = await cache.getLogo(id)
      return logo ? { logoId: logo._id, totalVotes: logo.totalVotes, version: logo.version } : null
    },
    getDeadline: (): Promise<DeadlineState> => cache.getDeadline(),
    /** Not cached: private to one user and read rarely (GET /me/votes, users.<sub>.votes). */
    userVotes: (userId: string): Promise<string[]> => store.userVotes(userId),

    async createLogo (input: CreateLogoInput): Promise<Logo> {
      const logo = await store.createLogo(input)
      await publish(changeOf.created(logo))
      return logo
    },
    async updateLogo (id: string, patch: UpdateLogoInput): Promise<Logo | null> {
      const logo = await store.updateLogo(id, patch)
      if (logo) await publish(changeOf.updated(logo))
      return logo
    },
    async deleteLogo (id: string): Promise<boolean> {
      const deleted = await store.deleteLogo(id)
      if (deleted) await publish(changeOf.deleted(deleted))
      return deleted !== null
    },
    async castVote (logoId: string, userId: string): Promise<VoteOutcome> {
      return afterVote(await store.castVote(logoId, userId), userId)
    },
    async retractVote (logoId: string, userId: string): Promise<VoteOutcome> {
      return afterVote(await store.retractVote(logoId, userId), userId)
    },
    async setDeadline (deadline: string | null): Promise<DeadlineState> {
      const state = await store.setDeadline(deadline)
      await publish(changeOf.deadline(state))
      return state
    }
  }
}

export type LogoService = ReturnType<typeof createLogoService>
