// Group commit for votes on PostgreSQL. A hot logo's row lock allows one vote transaction at a
// time, so one transaction per vote caps votes at one commit (five round trips and a WAL flush)
// each. Here votes that arrive while a transaction is in flight wait for the next one and go in
// together, in arrival order, as one transaction:
//   BEGIN
//   lock    the deadline row FOR SHARE (a deadline change waits for the batch) and the batch's
//           logo rows FOR UPDATE, in id order (so batches on any number of replicas never deadlock)
//   read    which of the batch's (logo, user) rows exist, after the locks: every vote writer holds
//           the logo's lock, so nothing changes them until COMMIT
//   write   one statement: the rows that must appear, the rows that must go, and per logo
//           `total_votes = total_votes + delta, version = version + changes`
//   steps   (the PostgreSQL bus's NOTIFY, with every change of the batch)
//   COMMIT
// in two round trips: BEGIN, lock and read go in one simple-protocol message, write and COMMIT in
// another (with transaction steps: write, steps, COMMIT). The hot logo's lock is held from the
// first message to the COMMIT, so round trips are what a batch waits on (issue 14: five round
// trips were 25 ms a batch on a loaded 2-core machine). Values go into those messages as
// literals escaped by the driver (escapeLiteral over a PostgreSQL array literal), never as SQL.
// Each vote still gets its own exact answer: the batch is applied in arrival order in memory, so
// a vote's `changed`, `totalVotes` and `version` are what one transaction per vote in that order
// would have answered (every change moves its logo's version by one, as before). A repeat never
// counts twice; a logo that does not exist fails only its own votes; a closed deadline (checked
// under its lock) fails the whole batch; so does any other error, and nothing is written.
import type pg from 'pg'
import { changeOf, type BusEvent } from '../changes.js'
import { isVotingOpen } from '../domain.js'
import { NotFoundError, VotingClosedError, type VoteOutcome } from './types.js'

/** Votes per transaction at most; more wait for the next one. */
export const MAX_BATCH = 500
/** Vote transactions in flight at once per store (per replica); the rest of the votes queue. */
export const MAX_IN_FLIGHT = 2
/** Attempts for a batch that PostgreSQL aborted as a deadlock or serialization failure. */
const ATTEMPTS = 3

interface PendingVote {
  logoId: string
  userId: string
  cast: boolean
  resolve: (outcome: VoteOutcome) => void
  reject: (err: unknown) => void
}

export interface VoteBatcherOptions {
  /**
   * Runs `fn` on a connection of its own. `fn` sends BEGIN and COMMIT itself (each merged into a
   * message with other statements); when `fn` throws, the runner sends ROLLBACK and rethrows.
   */
  session: <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>
  /** The store's transaction steps, with the batch's changes, before COMMIT. */
  runSteps: (c: pg.PoolClient, changes: (BusEvent | null)[]) => Promise<void>
  /** Whether any transaction step is registered (then the write and COMMIT go separately, the steps between). */
  hasSteps: () => boolean
}

/** A PostgreSQL array literal of strings, for escapeLiteral: every element quoted, `\\` and `"` escaped. */
export const textArrayLiteral = (xs: readonly string[]) => `{${xs.map((x) => `"${x.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`).join(',')}}`
const intArrayLiteral = (xs: readonly number[]) => `{${xs.map((x) => String(Math.trunc(x))).join(',')}}`

/** BEGIN, the locks and the read of the batch's existing (logo, user) rows: one message. */
function beginLockRead (c: pg.PoolClient, logoIds: string[], pairs: { logoId: string, userId: string }[]): string {
  const texts = (xs: string[]) => `${c.escapeLiteral(textArrayLiteral(xs))}::text[]`
  return `BEGIN;
SELECT v.deadline, l.id, l.total_votes, l.version
FROM voting v LEFT JOIN LATERAL (
  SELECT id, total_votes, version FROM logos WHERE id = ANY(${texts(logoIds)}) ORDER BY id FOR UPDATE
) l ON true
WHERE v.id = 1
FOR SHARE OF v;
SELECT v.logo_id, v.user_id FROM votes v
JOIN unnest(${texts(pairs.map((p) => p.logoId))}, ${texts(pairs.map((p) => p.userId))}) AS p(logo_id, user_id)
  ON v.logo_id = p.logo_id AND v.user_id = p.user_id`
}

/** The batch's one write statement (rows in, rows out, per logo total + delta and version + changes). */
function writeStatement (c: pg.PoolClient, add: [string[], string[]], remove: [string[], string[]], moved: [string, { delta: number, changes: number }][]): string {
  const texts = (xs: string[]) => `${c.escapeLiteral(textArrayLiteral(xs))}::text[]`
  const ints = (xs: number[]) => `'${intArrayLiteral(xs)}'::int[]`
  return `WITH added AS (
  INSERT INTO votes (logo_id, user_id) SELECT * FROM unnest(${texts(add[0])}, ${texts(add[1])})
), removed AS (
  DELETE FROM votes v USING unnest(${texts(remove[0])}, ${texts(remove[1])}) AS p(logo_id, user_id)
  WHERE v.logo_id = p.logo_id AND v.user_id = p.user_id
)
UPDATE logos l SET total_votes = l.total_votes + c.delta, version = l.version + c.changes
FROM unnest(${texts(moved.map(([id]) => id))}, ${ints(moved.map(([, l]) => l.delta))}, ${ints(moved.map(([, l]) => l.changes))}) AS c(id, delta, changes)
WHERE l.id = c.id`
}

const retryable = (err: unknown) => ['40P01', '40001'].includes((err as { code?: string }).code ?? '')
const pairKey = (logoId: string, userId: string) => `${logoId}\u0000${userId}`

export function createVoteBatcher (opts: VoteBatcherOptions) {
  let queue: PendingVote[] = []
  let inFlight = 0
  let scheduled = false

  /** Starts batches while there are votes and room; a new vote waits one tick for company. */
  function pump (): void {
    while (inFlight < MAX_IN_FLIGHT && queue.length > 0) {
      const batch = queue.length <= MAX_BATCH ? queue : queue.slice(0, MAX_BATCH)
      queue = queue.length <= MAX_BATCH ? [] : queue.slice(MAX_BATCH)
      inFlight++
      void run(batch).finally(() => { inFlight--; pump() })
    }
  }

  async function run (batch: PendingVote[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { outcomes, failed } = await opts.session((c) => commit(c, batch))
        batch.forEach((vote, i) => {
          const outcome = outcomes[i]
          if (outcome) vote.resolve(outcome)
          else vote.reject(failed[i])
        })
        return
      } catch (err) {
        if (attempt < ATTEMPTS && retryable(err)) continue
        for (const vote of batch) vote.reject(err)
        return
      }
    }
  }

  /** The batch's transaction body; answers per vote (an outcome, or the error for that vote alone). */
  async function commit (c: pg.PoolClient, batch: PendingVote[]): Promise<{ outcomes: (VoteOutcome | null)[], failed: unknown[] }> {
    const logoIds = [...new Set(batch.map((v) => v.logoId))].sort()
    const pairs = [...new Map(batch.map((v) => [pairKey(v.logoId, v.userId), v])).values()]
    // A simple-protocol message with three statements answers with three results.
    const [, lockedResult, existingResult] = await c.query(beginLockRead(c, logoIds, pairs)) as unknown as [unknown, pg.QueryResult<{ deadline: Date | null, id: string | null, total_votes: number, version: number }>, pg.QueryResult<{ logo_id: string, user_id: string }>]
    const locked = lockedResult.rows
    const deadline = locked[0].deadline ? locked[0].deadline.toISOString() : null
    if (!isVotingOpen(deadline)) throw new VotingClosedError(deadline!)
    const logos = new Map<string, { total: number, version: number, delta: number, changes: number }>()
    for (const row of locked) if (row.id !== null) logos.set(row.id, { total: row.total_votes, version: row.version, delta: 0, changes: 0 })

    // Rows of logos that do not exist cannot exist (foreign key); the read covered every pair.
    const present = new Set<string>()
    for (const row of existingResult.rows) present.add(pairKey(row.logo_id, row.user_id))

    // In arrival order, as if each vote were a transaction of its own.
    const initially = new Map<string, boolean>()
    const outcomes: (VoteOutcome | null)[] = []
    const failed: unknown[] = []
    const changes: (BusEvent | null)[] = []
    for (const vote of batch) {
      const logo = logos.get(vote.logoId)
      if (!logo) {
        outcomes.push(null)
        failed.push(new NotFoundError('Logo'))
        continue
      }
      const key = pairKey(vote.logoId, vote.userId)
      if (!initially.has(key)) initially.set(key, present.has(key))
      const changed = present.has(key) !== vote.cast
      if (changed) {
        if (vote.cast) present.add(key)
        else present.delete(key)
        logo.total += vote.cast ? 1 : -1
        logo.delta += vote.cast ? 1 : -1
        logo.version++
        logo.changes++
      }
      const outcome: VoteOutcome = { logoId: vote.logoId, totalVotes: logo.total, voted: vote.cast, version: logo.version, changed }
      outcomes.push(outcome)
      failed.push(null)
      changes.push(changeOf.vote(outcome, vote.userId))
    }

    const add: [string[], string[]] = [[], []]
    const remove: [string[], string[]] = [[], []]
    for (const [key, was] of initially) {
      const now = present.has(key)
      if (now === was) continue
      const [logoId, userId] = key.split('\u0000')
      const side = now ? add : remove
      side[0].push(logoId)
      side[1].push(userId)
    }
    const moved = [...logos].filter(([, l]) => l.changes > 0)
    if (moved.length === 0) {
      await c.query('COMMIT')
    } else if (!opts.hasSteps()) {
      await c.query(`${writeStatement(c, add, remove, moved)};\nCOMMIT`)
    } else {
      await c.query(writeStatement(c, add, remove, moved))
      await opts.runSteps(c, changes)
      await c.query('COMMIT')
    }
    return { outcomes, failed }
  }

  return {
    vote (logoId: string, userId: string, cast: boolean): Promise<VoteOutcome> {
      return new Promise((resolve, reject) => {
        queue.push({ logoId, userId, cast, resolve, reject })
        if (scheduled || inFlight >= MAX_IN_FLIGHT) return
        scheduled = true
        setImmediate(() => { scheduled = false; pump() })
      })
    }
  }
}
