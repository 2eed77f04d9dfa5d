// Seeded chaos against the scaled deployment: SDK clients through nginx (deploy/nginx.conf) to
// real replicas on a private PostgreSQL and Redis, while a seeded schedule kills, freezes and
// restarts them (test/chaos/). The same seed plays the same schedule.
//   npm run chaos -- [--seed N] [--seconds S] [--quick]
// --quick: two replicas, fewer clients (CI). Progress goes to stderr; the last line of stdout is
// one JSON object {seed, faults, votesAcked, votesLost, clientsConverged, violations, ...}.
// Exits 1 on any violation. Needs PostgreSQL's binaries (initdb, pg_ctl; run as root: it uses
// runuser -u postgres), redis-server and nginx, as the tests do.
import { parseArgs } from 'node:util'
import { runChaos } from '../test/chaos/run.js'

const USAGE = 'usage: npm run chaos -- [--seed N] [--seconds S] [--quick]'

async function main (): Promise<number> {
  let args
  try {
    args = parseArgs({
      options: {
        seed: { type: 'string' },
        seconds: { type: 'string' },
        quick: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' }
      }
    }).values
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  if (args.help) { console.log(USAGE); return 0 }
  const seed = args.seed === undefined ? Date.now() % 2 ** 31 : Number(args.seed)
  const seconds = Number(args.seconds ?? (args.quick ? 30 : 150))
  if (!Number.isInteger(seed) || seed < 0 || !Number.isFinite(seconds) || seconds < 5 || seconds > 3600) {
    console.error(USAGE)
    return 2
  }
  const teardowns: (() => unknown)[] = []
  const t = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
  const started = Date.now()
  try {
    const result = await runChaos(t, { seed, seconds, quick: args.quick, log: (line) => console.error(`[chaos ${((Date.now() - started) / 1000).toFixed(1)} s] ${line}`) })
    for (const v of result.violations) console.error(`VIOLATION: ${v}`)
    if (result.violations.length > 0) console.error(`replay: ${result.replay}`)
    console.log(JSON.stringify(result))
    return result.violations.length > 0 ? 1 : 0
  } catch (err) {
    console.error(`chaos run failed to run (seed ${seed}): ${(err as Error).stack}`)
    console.log(JSON.stringify({ seed, faults: {}, votesAcked: 0, votesLost: 0, clientsConverged: 0, violations: [`the run itself failed: ${(err as Error).message}`] }))
    return 1
  } finally {
    for (const fn of teardowns.reverse()) {
      try { await fn() } catch { /* best effort */ }
    }
  }
}

process.exitCode = await main()
