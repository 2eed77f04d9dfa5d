// Group commit of votes on PostgreSQL (src/store/postgres-votes.ts): votes that arrive together
// share a transaction, and each still gets the answer it would have got alone, in arrival order.
// Real PostgreSQL; the transaction runner only counts the transactions it runs.
import fc from 'fast-check'
import pg from 'pg'
import t from 'tap'
import { createVoteBatcher } from '../src/store/postgres-votes.js'
import { createPostgresStore } from '../src/store/postgres.js'
import { NotFoundError, VotingClosedError, type Store, type VoteOutcome } from '../src/store/types.js'
import { PG_URL, pgSchema, type TestLike } from './helper.js'

interface Op { logo: string, user: string, cast: boolean }

/** One transaction per vote, in order: what every answer must equal. */
function serially (ops: Op[], start: Map<string, { total: number, version: number }>, present = new Set<string>()): Omit<VoteOutcome, 'logoId'>[] {
  const logos = new Map([...start].map(([id, s]) => [id, { ...s }]))
  return ops.map((op) => {
    const logo = logos.get(op.logo)!
    const key = `${op.logo}/${op.user}`
    const changed = present.has(key) !== op.cast
    if (changed) {
      if (op.cast) present.add(key)
      else present.delete(key)
      logo.total += op.cast ? 1 : -1
      logo.version++
    }
    return { totalVotes: logo.total, voted: op.cast, version: logo.version, changed }
  })
}

/** A store on a schema of this test's own, plus a batcher on its tables that counts its transactions. */
async function setup (t: TestLike) {
  const schema = await pgSchema(t)
  const store = await createPostgresStore({ connectionString: PG_URL, schema })
  t.teardown(() => store.close())
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4, options: `-c search_path=${schema}` })
  t.teardown(() => pool.end())
  let transactions = 0
  const batcher = createVoteBatcher({
    async session (fn) {
      transactions++
      const c = await pool.connect()
      try {
        return await fn(c)
      } catch (err) {
        await c.query('ROLLBACK')
        throw err
      } finally {
        c.release()
      }
    },
    runSteps: async () => {},
    hasSteps: () => false
  })
  const rows = async (logoId: string) => Number((await pool.query('SELECT COUNT(*) AS n FROM votes WHERE logo_id = $1', [logoId])).rows[0].n)
  return { store, pool, batcher, rows, transactions: () => transactions }
}

t.test('one transaction for votes and retractions of the same user arriving together, each answered as if alone', async (t) => {
  const { store, batcher, rows, transactions } = await setup(t)
  const logo = await store.createLogo({ title: 'Hot', imageUrl: 'https://x.test/h.png' })
  await store.castVote(logo._id, 'dave') // already voted before the batch
  const start = new Map([[logo._id, { total: 1, version: logo.version + 1 }]])
  const ops: Op[] = [
    ...[true, true, false, false, true, false, true].map((cast) => ({ logo: logo._id, user: 'alice', cast })),
    { logo: logo._id, user: 'bob', cast: true },
    { logo: logo._id, user: 'carol', cast: false },
    { logo: logo._id, user: 'dave', cast: true },
    { logo: logo._id, user: 'dave', cast: false },
    { logo: logo._id, user: 'bob', cast: false },
    { logo: logo._id, user: 'bob', cast: true }
  ]
  const before = transactions()
  const answers = await Promise.all(ops.map((op) => batcher.vote(op.logo, op.user, op.cast)))
  t.equal(transactions() - before, 1, 'all thirteen in one transaction')
  t.same(answers.map(({ logoId, ...rest }) => rest), serially(ops, start, new Set([`${logo._id}/dave`])), 'each answer is the one-vote-per-transaction answer, in arrival order')
  t.ok(answers.every((a) => a.logoId === logo._id))
  const stored = (await store.getVotes(logo._id))!
  t.same(stored, { logoId: logo._id, totalVotes: 2, version: answers.at(-1)!.version }, 'the count and version the last answer gave are stored')
  t.equal(await rows(logo._id), 2, 'alice and bob: the count is exactly the vote rows')
  t.same(await store.userVotes('dave'), [], "dave's retraction stands")
})

t.test('a logo that does not exist fails only its own votes; a closed deadline fails the batch and writes nothing', async (t) => {
  const { store, batcher, rows } = await setup(t)
  const logo = await store.createLogo({ title: 'Real', imageUrl: 'https://x.test/r.png' })
  const results = await Promise.allSettled([
    batcher.vote(logo._id, 'ann', true),
    batcher.vote('0123456789abcdef01234567', 'ann', true),
    batcher.vote(logo._id, 'ben', true)
  ])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  t.type((results[1] as PromiseRejectedResult).reason, NotFoundError)
  t.equal(await rows(logo._id), 2)

  await store.setDeadline(new Date(Date.now() - 1000).toISOString())
  const closed = await Promise.allSettled([batcher.vote(logo._id, 'cid', true), batcher.vote(logo._id, 'ann', false)])
  t.ok(closed.every((r) => r.status === 'rejected' && r.reason instanceof VotingClosedError), 'every vote of the batch is refused')
  t.equal(await rows(logo._id), 2, 'nothing written')
  t.equal((await store.getVotes(logo._id))!.totalVotes, 2)
})

t.test('user ids with quotes, backslashes, commas, braces and non-ASCII go into the batch as values, never as SQL', async (t) => {
  const { store, batcher, rows, transactions } = await setup(t)
  const logo = await store.createLogo({ title: 'Odd names', imageUrl: 'https://x.test/o.png' })
  const users = ["o'brien", 'back\\slash', '"quoted"', 'comma,{brace}', 'NULL', "'); DROP TABLE votes; --", 'ünïcødé 🗳', ' spaced ']
  const before = transactions()
  const answers = await Promise.all(users.map((u) => batcher.vote(logo._id, u, true)))
  t.equal(transactions() - before, 1, 'one transaction')
  t.same(answers.map((a) => [a.changed, a.totalVotes]), users.map((_, i) => [true, i + 1]))
  t.equal(await rows(logo._id), users.length, 'one row per user')
  for (const u of users) t.same(await store.userVotes(u), [logo._id], `${JSON.stringify(u)} is stored as it was given`)
  const again = await Promise.all(users.map((u) => batcher.vote(logo._id, u, true)))
  t.ok(again.every((a) => !a.changed && a.totalVotes === users.length), 'each one is found again: repeats change nothing')
  const gone = await Promise.all(users.map((u) => batcher.vote(logo._id, u, false)))
  t.same(gone.map((a) => a.changed), users.map(() => true))
  t.equal(await rows(logo._id), 0)
})

t.test('two replicas voting at once: every answer fits one serial history per logo, and counts equal rows', async (t) => {
  const seed = Number(process.env.VOTES_SEED ?? Date.now() % 2 ** 31)
  t.comment(`fast-check seed ${seed} (replay: VOTES_SEED=${seed})`)
  const schema = await pgSchema(t)
  const replicas: Store[] = [
    await createPostgresStore({ connectionString: PG_URL, schema }),
    await createPostgresStore({ connectionString: PG_URL, schema })
  ]
  t.teardown(() => Promise.all(replicas.map((s) => s.close())))
  const db = new pg.Pool({ connectionString: PG_URL, max: 2, options: `-c search_path=${schema}` })
  t.teardown(() => db.end())

  const op = fc.record({ logo: fc.integer({ min: 0, max: 1 }), user: fc.constantFrom('u1', 'u2', 'u3', 'u4'), cast: fc.boolean(), replica: fc.integer({ min: 0, max: 1 }) })
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
    const logos = [await replicas[0].createLogo({ title: 'A', imageUrl: 'https://x.test/a.png' }), await replicas[0].createLogo({ title: 'B', imageUrl: 'https://x.test/b.png' })]
    const answers = await Promise.all(ops.map((o) => (o.cast ? replicas[o.replica].castVote(logos[o.logo]._id, o.user) : replicas[o.replica].retractVote(logos[o.logo]._id, o.user))))
    for (const [i, logo] of logos.entries()) {
      const mine = answers.map((a, j) => ({ a, op: ops[j] })).filter(({ op: o }) => o.logo === i)
      // The changed ones, by version, must be v+1, v+2, … each moving the count by exactly one.
      const changed = mine.filter(({ a }) => a.changed).sort((x, y) => x.a.version - y.a.version)
      const states = new Map<number, number>([[logo.version, 0]])
      let version = logo.version
      let total = 0
      for (const { a, op: o } of changed) {
        if (a.version !== version + 1) return false
        total += o.cast ? 1 : -1
        if (a.totalVotes !== total) return false
        version = a.version
        states.set(version, total)
      }
      // A repeat answers a state that existed.
      for (const { a } of mine.filter(({ a }) => !a.changed)) if (states.get(a.version) !== a.totalVotes) return false
      const { rows: [row] } = await db.query<{ total_votes: number, version: number, n: number }>(
        'SELECT total_votes, version, (SELECT COUNT(*)::int FROM votes WHERE logo_id = $1) AS n FROM logos WHERE id = $1', [logo._id])
      if (row.total_votes !== row.n || row.total_votes !== total || row.version !== version) return false
    }
    return true
  }), { seed, numRuns: 25 })
  t.pass('every run fitted a serial history with exact counts')
})
