// Generated hostile input (fast-check) against the real app over real sockets, on SQLite and on
// PostgreSQL: REST requests, forged tokens sent three ways, /sync sessions. The seed is printed;
// `npm run fuzz -- --seed <seed> --runs <runs> --store <store> --only <property>` replays a
// failure (fast-check's report also gives the `--path` of the one failing case).
import t from 'tap'
import { PROPERTY_NAMES, runProperty, startTarget, type PropertyName } from './fuzz/properties.js'

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
/** Cases per property per store: a few thousand in all, well under two minutes on a loaded box. */
const RUNS: Record<PropertyName, number> = { rest: 600, tokens: 150, sync: 250 }

for (const store of ['sqlite', 'postgres'] as const) {
  t.test(`${store}: generated hostile input changes nothing and breaks nothing (seed ${seed})`, async (t) => {
    t.comment(`fuzz seed ${seed}: replay with npm run fuzz -- --seed ${seed} --store ${store}`)
    const target = await startTarget(t, store)
    for (const name of PROPERTY_NAMES) {
      const result = await runProperty(target, name, { seed, runs: RUNS[name] })
      t.pass(`${name}: ${result.runs} cases in ${result.ms} ms; heap ${result.heapBeforeMb} MB -> ${result.heapAfterMb} MB`)
    }
  })
}
