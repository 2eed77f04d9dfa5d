// Long fuzz runs and replays of a failing seed, with the generators and properties the suite uses
// (test/fuzz/):
//   npm run fuzz -- [--runs 20000] [--seed N] [--store sqlite|postgres|both] [--only rest,tokens,sync] [--path P]
// --runs is per property and per store. Needs the PostgreSQL of the tests for --store postgres
// (TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test). Exits 1 on a failure,
// after printing fast-check's report (seed, path, the shrunk case).
import { parseArgs } from 'node:util'
import { PROPERTY_NAMES, runProperty, startTarget, type PropertyName } from '../test/fuzz/properties.js'

const USAGE = 'usage: npm run fuzz -- [--runs N] [--seed N] [--store sqlite|postgres|both] [--only rest,tokens,sync] [--path P]'

async function main (): Promise<number> {
  let args
  try {
    args = parseArgs({
      options: {
        runs: { type: 'string', default: '20000' },
        seed: { type: 'string' },
        store: { type: 'string', default: 'sqlite' },
        only: { type: 'string' },
        path: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    }).values
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  if (args.help) { console.log(USAGE); return 0 }
  const runs = Number(args.runs)
  const seed = args.seed === undefined ? Date.now() % 2 ** 31 : Number(args.seed)
  const stores = args.store === 'both' ? ['sqlite', 'postgres'] as const : [args.store]
  const only = (args.only?.split(',') ?? PROPERTY_NAMES) as PropertyName[]
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed) || stores.some((s) => s !== 'sqlite' && s !== 'postgres') || only.some((p) => !PROPERTY_NAMES.includes(p))) {
    console.error(USAGE)
    return 2
  }
  const teardowns: (() => unknown)[] = []
  const t = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
  console.log(JSON.stringify({ seed, runs, stores, properties: only }))
  let failed = false
  try {
    for (const store of stores) {
      const target = await startTarget(t, store as 'sqlite' | 'postgres')
      for (const name of only) {
        try {
          const result = await runProperty(target, name, { seed, runs, ...(args.path ? { path: args.path } : {}) })
          console.log(JSON.stringify({ store, ...result }))
        } catch (err) {
          failed = true
          console.error(`\n${store} ${name} FAILED (seed ${seed}). Replay: npm run fuzz -- --seed ${seed} --runs ${runs} --store ${store} --only ${name}\n`)
          console.error((err as Error).message)
        }
      }
    }
  } finally {
    for (const fn of teardowns.reverse()) await fn()
  }
  return failed ? 1 : 0
}

process.exitCode = await main()
