// Votes end to end over HTTP, scaled vs embedded, side by side in one run (issue 14, scenario 3):
//   embedded  POST /logos/:id/votes on the app in embedded mode (SQLite, in-process bus)
//   scaled    the same on the app in scaled mode (PostgreSQL group commit + Redis: bus, L2 cache,
//             rate-limit leases)
// autocannon (20 connections, no pipelining) in a process of its own on the load core, each
// request signed for a new user (so every vote counts: nothing is a cheap repeat); each server in
// a process of its own on the server core; PostgreSQL and Redis are the machine's shared servers
// (not pinned). Rounds alternate. Afterwards each hot logo's totalVotes must equal the votes
// answered 200. Target: scaled ≥ 0.7× embedded.
import { createLogos, startApp, SECRET, voteRows, type AppServer, type Mode } from './apps.js'
import { alternate, row, startHttpLoad, type BenchOptions, type BenchReport, type HttpResult, type LoadRun } from './lib.js'

export const title = 'Votes over HTTP: scaled (PostgreSQL + Redis) vs embedded (SQLite)'
const TARGET = 0.7
const CONNECTIONS = 20
const MODES: Mode[] = ['embedded', 'scaled']

export default async function votesHttp (opts: BenchOptions): Promise<BenchReport> {
  const apps: AppServer[] = []
  const loader = await startHttpLoad()
  try {
    // Started together: each compiles through tsx at start, which takes seconds on a busy machine.
    const started = await Promise.allSettled(MODES.map(async (m) => await startApp(m)))
    for (const s of started) if (s.status === 'fulfilled') apps.push(s.value)
    for (const s of started) if (s.status === 'rejected') throw s.reason
    const app = (m: Mode) => apps.find((a) => a.mode === m)!
    const logo: Record<Mode, string> = { embedded: (await createLogos(app('embedded').url, 1, 'Hot'))[0], scaled: (await createLogos(app('scaled').url, 1, 'Hot'))[0] }
    const accepted: Record<Mode, number> = { embedded: 0, scaled: 0 }
    let batch = 0
    let runs = 0
    const load = async (m: Mode, seconds: number) => {
      const cpu0 = app(m).cpuUs()
      const run = await loader.run({
        url: `${app(m).url}/logos/${logo[m]}/votes`,
        method: 'POST',
        connections: CONNECTIONS,
        duration: seconds,
        distinctUsers: { secret: SECRET, subPrefix: `voter-${m}-${batch++}-` }
      })
      accepted[m] += run.output.statusCodes['200'] ?? 0
      runs++
      return { run, serverCpuUs: app(m).cpuUs() - cpu0 }
    }
    if (opts.warmupS > 0) for (const m of MODES) await load(m, opts.warmupS)
    const rounds = await alternate(opts.rounds, MODES, async (m) => await load(m, opts.durationS))

    // The count: totalVotes must equal the vote rows in the database exactly; the votes answered
    // 200 are a lower bound (autocannon stops with up to CONNECTIONS requests in flight per run,
    // which the server may still commit after the load generator stopped counting).
    await new Promise((resolve) => setTimeout(resolve, 500))
    const totals = {} as Record<Mode, number>
    const rowsIn = {} as Record<Mode, number>
    for (const m of MODES) {
      totals[m] = (await (await fetch(`${app(m).url}/logos/${logo[m]}`)).json() as { totalVotes: number }).totalVotes
      rowsIn[m] = await voteRows(app(m), logo[m])
    }
    const inFlight = CONNECTIONS * runs
    const sum = (m: Mode, f: (r: LoadRun<HttpResult>) => number) => rounds.reduce((a, r) => a + f(r[m].run), 0)
    const rate = (m: Mode) => sum(m, (r) => r.output.requests) / sum(m, (r) => r.output.seconds)
    const bad = (m: Mode) => sum(m, (r) => r.output.bad)
    const cpuPerVote = (m: Mode) => rounds.reduce((a, r) => a + r[m].serverCpuUs, 0) / sum(m, (r) => r.output.requests)
    const saturated = rounds.some((r) => MODES.some((m) => r[m].run.saturated))
    const exact = (m: Mode) => totals[m] === rowsIn[m] && accepted[m] <= totals[m] && totals[m] <= accepted[m] + inFlight
    const scenarios = [
      row('votes-http scaled vs embedded (POST /logos/:id/votes, distinct users)', rate('scaled'), rate('embedded'), {
        atLeast: TARGET,
        unit: 'votes/s',
        saturated,
        note: [MODES.every(exact) ? '' : 'COUNTS NOT EXACT', bad('scaled') + bad('embedded') === 0 ? '' : 'errors or non-2xx']
      }),
      row('votes-http server CPU per vote, scaled vs embedded', cpuPerVote('scaled'), cpuPerVote('embedded'), { unit: 'µs/vote', note: 'app process only: PostgreSQL and Redis CPU not included' })
    ]
    scenarios[0].met = scenarios[0].met && MODES.every(exact) && bad('scaled') + bad('embedded') === 0
    const perRound = rounds.map((r) => r.scaled.run.output.rps / r.embedded.run.output.rps)

    const markdown = [
      `## ${title}`,
      '',
      '| mode | votes/s | server CPU µs/vote | p50 / p99 ms | errors/non-2xx | count check: totalVotes / vote rows / votes answered 200 |',
      '|---|---|---|---|---|---|',
      ...MODES.map((m) => `| ${m} | **${rate(m).toFixed(0)}** | ${cpuPerVote(m).toFixed(0)} | ${rounds.map((r) => `${r[m].run.output.latencyP50} / ${r[m].run.output.latencyP99}`).join(', ')} | ${bad(m)} | ${totals[m]} / ${rowsIn[m]} / ${accepted[m]} ${exact(m) ? '(exact)' : '**(NOT exact)**'} |`),
      '',
      `Scaled / embedded: **${(rate('scaled') / rate('embedded')).toFixed(3)}** (target ≥ ${TARGET}: ${scenarios[0].met ? 'met' : '**not met**'}; per round ${perRound.map((x) => x.toFixed(3)).join(', ')}). ` +
        `Load generator CPU (max of rounds): ${(Math.max(...rounds.flatMap((r) => MODES.map((m) => r[m].run.cpuShare))) * 100).toFixed(0)} % of its core${saturated ? ' — **saturated**' : ''}.`,
      '',
      `${CONNECTIONS} connections, no pipelining, every request a new user (HS256 token signed in the load process), one hot logo per mode; ` +
        `${opts.rounds} rounds × ${opts.durationS} s per mode, order rotating, after ${opts.warmupS} s warm-up each. ` +
        'Rate limits on (limits raised so they never refuse); scaled = PostgreSQL + Redis with a schema and key prefix of its own. ' +
        'Server CPU is the app process only; PostgreSQL and Redis run unpinned beside it. ' +
        `Count check: totalVotes = vote rows in the database, and between the votes answered 200 and that plus the ${CONNECTIONS} requests each run leaves in flight when autocannon stops.`,
      ''
    ].join('\n')
    return { title, ok: scenarios[0].met, markdown, scenarios }
  } finally {
    await loader.stop()
    for (const a of apps) { await a.stop(); await a.dispose() }
  }
}
