// One Bus conformance suite, run unchanged against every adapter (in-process, Redis pub/sub).
import type { Test } from 'tap'
import type { Bus, BusEvent, BusMessage } from '../src/bus/types.js'
import type { Logo } from '../src/domain.js'

/**
 * Two buses on the same medium, as two replicas would hold them (the in-process adapter has
 * one medium per process, so both are the same bus there).
 */
export type MakeBuses = (t: Test) => Promise<{ a: Bus, b: Bus }>

const logo: Logo = {
  _id: 'logo1',
  title: 'Ünïcode ✓ "quoted"',
  imageUrl: 'https://x.test/l.png',
  description: 'd',
  totalVotes: 3,
  version: 4,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-02T00:00:00.000Z'
}

export const everyKind: BusEvent[] = [
  { kind: 'logo.created', logo },
  { kind: 'logo.updated', logo: { ...logo, version: 5 } },
  { kind: 'votes', logoId: 'logo1', totalVotes: 4, version: 6, userId: 'u@x+1', voted: true },
  { kind: 'votes', logoId: 'logo1', totalVotes: 3, version: 7, userId: 'u@x+1', voted: false },
  { kind: 'deadline', deadline: '2027-01-01T00:00:00.000Z', version: 2 },
  { kind: 'deadline', deadline: null, version: 3 },
  { kind: 'logo.deleted', logoId: 'logo1', version: 8 }
]

/** Collects messages; `until(n)` waits for n of them. */
function collector (bus: Bus) {
  const got: BusMessage[] = []
  let wake: (() => void) | null = null
  const off = bus.subscribe((m) => { got.push(m); wake?.() })
  const until = async (n: number, timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs
    while (got.length < n) {
      if (Date.now() > deadline) throw new Error(`got ${got.length} of ${n} messages`)
      await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 20) })
    }
    return got
  }
  return { got, until, off }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 100))

export function busConformance (t: Test, make: MakeBuses): void {
  t.test('every subscriber gets every event, the publisher included, stamped with origin and time', async (t) => {
    const { a, b } = await make(t)
    const onA = collector(a)
    const onB = collector(b)
    const before = Date.now()
    await a.publish(everyKind[0])
    const [fromA] = await onA.until(1)
    const [fromB] = await onB.until(1)
    t.same(fromA.event, everyKind[0])
    t.same(fromB.event, everyKind[0])
    t.equal(typeof fromA.origin, 'string')
    t.equal(fromA.origin, fromB.origin, 'the same origin wherever it is received')
    t.ok(fromA.publishedAt >= before && fromA.publishedAt <= Date.now(), 'publishedAt is the publish time')
  })

  t.test('delivery never happens inside publish', async (t) => {
    const { a } = await make(t)
    const on = collector(a)
    const published = a.publish(everyKind[4])
    t.equal(on.got.length, 0, 'nothing delivered synchronously')
    await published
    await on.until(1)
  })

  t.test('every kind of event arrives intact', async (t) => {
    const { a, b } = await make(t)
    const on = collector(b)
    for (const e of everyKind) await a.publish(e)
    const got = await on.until(everyKind.length)
    t.same(got.map((m) => m.event), everyKind)
  })

  t.test("one publisher's events arrive in publish order", async (t) => {
    const { a, b } = await make(t)
    const on = collector(b)
    const n = 300
    await Promise.all(Array.from({ length: n }, (_, i) => a.publish({ kind: 'votes', logoId: 'o', totalVotes: i, version: i + 1, userId: 'u', voted: true })))
    const got = await on.until(n)
    t.same(got.map((m) => (m.event as { version: number }).version), Array.from({ length: n }, (_, i) => i + 1))
  })

  t.test('unsubscribing stops that handler only', async (t) => {
    const { a, b } = await make(t)
    const stays = collector(b)
    const leaves = collector(b)
    leaves.off()
    await a.publish(everyKind[4])
    await stays.until(1)
    await settle()
    t.equal(leaves.got.length, 0)
  })

  t.test('ping answers; a closed bus delivers nothing more', async (t) => {
    const { a, b } = await make(t)
    await a.ping()
    const on = collector(a)
    const off = a.onResync(() => {})
    t.type(off, 'function', 'onResync returns an unsubscribe function')
    off()
    await a.close()
    await a.close()
    await b.publish(everyKind[4]).catch(() => {})
    await settle()
    t.equal(on.got.length, 0)
  })
}
