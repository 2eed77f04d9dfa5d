// The seeded chaos runner in CI (--quick: two replicas behind nginx, eight SDK clients, about 25 s
// of faults): the seed is chosen per run and printed; `npm run chaos -- --seed <seed> --seconds 25
// --quick` replays its schedule. Every invariant of test/chaos/run.ts must hold: no acknowledged
// vote or retraction lost, counts equal rows, every client and replica converged, no crash.
import t from 'tap'
import { runChaos } from './chaos/run.js'
import { chaosSchedule, FAULT_KINDS } from './chaos/schedule.js'

const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 2 ** 31)
const SECONDS = 25

t.test('the schedule is a function of the seed', async (t) => {
  const a = chaosSchedule({ seed, seconds: SECONDS, replicas: 2 })
  t.same(chaosSchedule({ seed, seconds: SECONDS, replicas: 2 }), a, 'same seed, same schedule')
  t.notSame(chaosSchedule({ seed: seed + 1, seconds: SECONDS, replicas: 2 }), a, 'another seed, another schedule')
  t.same(new Set(a.slice(0, FAULT_KINDS.length).map((f) => f.kind)), new Set(FAULT_KINDS), 'every kind of fault in the first six')
  t.ok(a.every((f, i) => i === 0 || f.at > a[i - 1].at), 'in time order')
})

t.test(`chaos --quick (seed ${seed})`, async (t) => {
  t.comment(`chaos seed ${seed}: replay with npm run chaos -- --seed ${seed} --seconds ${SECONDS} --quick`)
  const result = await runChaos(t, { seed, seconds: SECONDS, quick: true, log: (line) => t.comment(line) })
  t.comment(JSON.stringify(result))
  t.same(result.violations, [], 'no violations')
  t.equal(result.votesLost, 0, 'no acknowledged vote lost')
  t.equal(result.retractionsLost, 0, 'no acknowledged retraction undone')
  t.equal(result.clientsConverged, result.clients, 'every client converged on the store')
  t.ok(result.votesAcked > 50, `traffic flowed through the faults (${result.votesAcked} acknowledged)`)
  t.ok(Object.values(result.faults).reduce((a, b) => a + (b ?? 0), 0) >= FAULT_KINDS.length, `every kind of fault was played: ${JSON.stringify(result.faults)}`)
})
