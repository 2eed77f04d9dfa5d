// The chaos runner's fault schedule: worked out in full from the seed before anything starts
// (pure-rand's xoroshiro128+), so the same seed gives the same faults, in the same order, on the
// same targets, for the same durations. Faults run one after another (a replica restarting while
// PostgreSQL is down would only test the boot path), separated by seeded gaps of live traffic.
import { uniformInt } from 'pure-rand/distribution/uniformInt'
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus'

export const FAULT_KINDS = [
  'redis-restart', // SIGKILL redis-server, down for `ms`, start it again (empty: no data, no scripts)
  'redis-freeze', // SIGSTOP redis-server for `ms`, then SIGCONT
  'replica-freeze', // SIGSTOP a replica for `ms`, then SIGCONT (nginx keeps sending it requests)
  'replica-kill', // SIGKILL a replica, restart it on the same port after `ms`
  'postgres-restart', // pg_ctl stop -m immediate, down for `ms`, start again
  'stalled-clients' // `count` new clients subscribe to everything and stop reading
] as const
export type FaultKind = typeof FAULT_KINDS[number]

export interface Fault {
  /** When it is due, in ms from the start of the traffic (it waits for the previous fault to end). */
  at: number
  kind: FaultKind
  /** Replica index for replica faults. */
  replica?: number
  /** How long the fault holds (down, frozen) in ms. */
  ms: number
  /** stalled-clients: how many. */
  count?: number
}

export interface ScheduleOptions {
  seed: number
  /** Length of the faulty part of the run. */
  seconds: number
  replicas: number
}

/** A seeded generator of the runner's other choices (traffic), independent of the schedule's. */
export function seededRandom (seed: number) {
  const rng = xoroshiro128plus(seed)
  return {
    int: (from: number, to: number) => uniformInt(rng, from, to),
    pick: <T>(items: readonly T[]): T => items[uniformInt(rng, 0, items.length - 1)]
  }
}

/**
 * The faults for a run. Every kind appears at least once (the first six are a seeded permutation
 * of the kinds, played even if that takes longer than `seconds`), the rest are seeded picks.
 */
export function chaosSchedule ({ seed, seconds, replicas }: ScheduleOptions): Fault[] {
  const random = seededRandom(seed)
  const kinds: FaultKind[] = [...FAULT_KINDS]
  for (let i = kinds.length - 1; i > 0; i--) { // Fisher-Yates with the seeded generator
    const j = random.int(0, i)
    ;[kinds[i], kinds[j]] = [kinds[j], kinds[i]]
  }
  const faults: Fault[] = []
  let at = random.int(1000, 3000)
  const end = seconds * 1000
  while (at < end || faults.length < kinds.length) { // every kind plays, however short the run
    const kind = faults.length < kinds.length ? kinds[faults.length] : random.pick(FAULT_KINDS)
    const fault: Fault = { at, kind, ms: 0 }
    switch (kind) {
      case 'redis-restart': fault.ms = random.int(500, 4000); break
      case 'redis-freeze': fault.ms = random.int(500, 4000); break
      case 'replica-freeze': fault.replica = random.int(0, replicas - 1); fault.ms = random.int(500, 5000); break
      case 'replica-kill': fault.replica = random.int(0, replicas - 1); fault.ms = random.int(0, 2000); break
      case 'postgres-restart': fault.ms = random.int(500, 3000); break
      case 'stalled-clients': fault.count = random.int(1, 4); break
    }
    faults.push(fault)
    // The next fault is due after this one's own time and a gap of live traffic; a replica
    // restart takes longer than its `ms` (the process boots), which the runner waits for.
    at += fault.ms + random.int(1500, 5000)
  }
  return faults
}
