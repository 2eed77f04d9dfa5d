// Votes per second through the Store port (no HTTP), side by side in one run with the naive
// PostgreSQL loop a developer would write first (issue 14, scenario 3):
//   store-postgres  castVote on the PostgreSQL adapter: group commit (src/store/postgres-votes.ts)
//   store-sqlite    castVote on the SQLite adapter (embedded mode)
//   naive           one autocommit statement per vote on a pg.Pool:
//                   WITH ins AS (INSERT … ON CONFLICT DO NOTHING RETURNING 1) UPDATE logos …
// All three with the same concurrency (20 callers in flight, pools of 20), every vote from a new
// user, on one hot logo each, in one process of their own on the load core (bench/load-votes.ts);
// PostgreSQL is the machine's shared server, not pinned. Rounds alternate the targets. After the
// last round the counts are checked exactly: each logo's total_votes = its vote rows = the votes
// acknowledged as changed. Target: store-postgres ≥ 3× naive. Reported beside it, how the store
// grows: store-postgres-16 (the votes spread over 16 logos) and store-postgres-2r (two replicas'
// stores, each its own pool and batcher, half the callers each, on one hot logo).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { benchName, dropSchema, PG_URL } from './apps.js'
import { alternate, row, startLoadChild, type BenchOptions, type BenchReport, type LoadRun } from './lib.js'
import type { VotesCheck, VotesRun, VoteTarget } from './load-votes.js'

export const title = 'Votes through the Store port vs the naive PostgreSQL loop'
const TARGET = 3
const CONCURRENCY = 20
const TARGETS: VoteTarget[] = ['naive', 'store-postgres', 'store-sqlite', 'store-postgres-16', 'store-postgres-2r']

export default async function votesStore (opts: BenchOptions): Promise<BenchReport> {
  const schemas = { 'store-postgres': benchName('bench_store'), naive: benchName('bench_naive') }
  const dir = mkdtempSync(join(tmpdir(), 'logo-sync-bench-votes-'))
  const child = await startLoadChild('bench/load-votes.ts')
  const maxVotes = opts.quick ? 20_000 : 500_000
  try {
    await child.run({ op: 'open', pgUrl: PG_URL, schemas, sqliteFile: join(dir, 'votes.db'), concurrency: CONCURRENCY })
    const runOnce = async (target: VoteTarget, seconds: number) => await child.run<unknown, VotesRun>({ op: 'run', target, seconds, maxVotes })
    if (opts.warmupS > 0) for (const target of TARGETS) await runOnce(target, opts.warmupS)
    const rounds = await alternate(opts.rounds, TARGETS, async (target) => await runOnce(target, opts.durationS))
    const checks = (await child.run<unknown, VotesCheck>({ op: 'check' })).output

    const total = (t: VoteTarget) => rounds.reduce((a, r) => a + r[t].output.votes, 0)
    const seconds = (t: VoteTarget) => rounds.reduce((a, r) => a + r[t].output.seconds, 0)
    const rate = (t: VoteTarget) => total(t) / seconds(t)
    const errors = (t: VoteTarget) => rounds.reduce((a, r) => a + r[t].output.errors, 0)
    const cpuPerVote = (t: VoteTarget) => rounds.reduce((a, r) => a + r[t].cpuUs, 0) / total(t)
    const share = (t: VoteTarget) => Math.max(...rounds.map((r) => r[t].cpuShare))
    const exact = (t: VoteTarget) => {
      const c = checks.find((x) => x.target === t)!
      return c.totalVotes === c.rows && c.rows === c.acknowledged
    }
    const notes = (t: VoteTarget) => [
      exact(t) ? '' : 'COUNTS NOT EXACT',
      errors(t) === 0 ? '' : `${errors(t)} errors`,
      share(t) >= 0.9 ? `client process at ${(share(t) * 100).toFixed(0)} % of its core` : ''
    ]
    const scenarios = [
      row('votes-store postgres group commit vs naive loop', rate('store-postgres'), rate('naive'), { atLeast: TARGET, unit: 'votes/s', note: [...notes('store-postgres'), ...notes('naive')] }),
      row('votes-store sqlite (embedded) vs naive loop', rate('store-sqlite'), rate('naive'), { unit: 'votes/s', note: [...notes('store-sqlite'), ...notes('naive')] }),
      row('votes-store postgres, 16 logos vs one hot logo', rate('store-postgres-16'), rate('store-postgres'), { unit: 'votes/s', note: notes('store-postgres-16') }),
      row('votes-store postgres, two replicas vs one, one hot logo', rate('store-postgres-2r'), rate('store-postgres'), { unit: 'votes/s', note: notes('store-postgres-2r') })
    ]
    scenarios[0].met = scenarios[0].met && exact('store-postgres') && exact('naive') && errors('store-postgres') === 0
    const ok = scenarios[0].met && TARGETS.every((t) => exact(t) && errors(t) === 0)
    const perRound = rounds.map((r) => r['store-postgres'].output.votes / r['store-postgres'].output.seconds / (r.naive.output.votes / r.naive.output.seconds))

    const describe: Record<VoteTarget, string> = {
      'store-postgres': '`Store.castVote`, PostgreSQL (group commit)',
      'store-sqlite': '`Store.castVote`, SQLite (embedded)',
      naive: 'naive loop: one autocommit `WITH ins AS (INSERT … ON CONFLICT DO NOTHING RETURNING 1) UPDATE logos …` per vote',
      'store-postgres-16': '`Store.castVote`, PostgreSQL, votes spread over 16 logos',
      'store-postgres-2r': '`Store.castVote`, PostgreSQL, two replicas (two stores, half the callers each), one hot logo'
    }
    const markdown = [
      `## ${title}`,
      '',
      '| target | votes/s | client CPU µs/vote | client CPU (max of rounds) | errors | count check: total_votes / rows / acknowledged |',
      '|---|---|---|---|---|---|',
      ...TARGETS.map((t) => {
        const c = checks.find((x) => x.target === t)!
        return `| ${describe[t]} | **${rate(t).toFixed(0)}** | ${cpuPerVote(t).toFixed(0)} | ${(share(t) * 100).toFixed(0)} % | ${errors(t)} | ${c.totalVotes} / ${c.rows} / ${c.acknowledged} ${exact(t) ? '(exact)' : '**(NOT exact)**'} |`
      }),
      '',
      `PostgreSQL group commit / naive loop: **${(rate('store-postgres') / rate('naive')).toFixed(2)}×** (target ≥ ${TARGET}: ${scenarios[0].met ? 'met' : '**not met**'}; ` +
        `per round ${perRound.map((x) => x.toFixed(2)).join(', ')}); SQLite / naive loop ${(rate('store-sqlite') / rate('naive')).toFixed(2)}×.`,
      '',
      `${CONCURRENCY} callers in flight per target (pools of ${CONCURRENCY}), every vote from a new user, one hot logo per target; ` +
        `${opts.rounds} rounds × ${opts.durationS} s per target, order rotating, after ${opts.warmupS} s warm-up each; at most ${maxVotes} votes per run. ` +
        'The client (store or loop) runs in a process of its own on the load core; PostgreSQL is the shared local server (not pinned), so its CPU is not in "client CPU".',
      '',
      '| round | ' + TARGETS.join(' votes/s | ') + ' votes/s |',
      '|---|' + TARGETS.map(() => '---|').join(''),
      ...rounds.map((r, i) => `| ${i + 1} | ` + TARGETS.map((t) => (r[t] as LoadRun<VotesRun>).output.votes / r[t].output.seconds).map((x) => x.toFixed(0)).join(' | ') + ' |'),
      ''
    ].join('\n')
    return { title, ok, markdown, scenarios }
  } finally {
    await child.run({ op: 'close' }).catch(() => {})
    await child.stop()
    rmSync(dir, { recursive: true, force: true })
    for (const schema of Object.values(schemas)) await dropSchema(schema)
  }
}
