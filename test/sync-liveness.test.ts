// The heartbeat (src/sync/liveness.ts) on a fake clock: pings go out in slices spread over the
// interval (never one burst to every connection), every peer is pinged once per interval, a peer
// that stops answering is terminated only after a whole interval without an answer, and a live
// peer whose place in the round moves (others leave) is never dropped for it. No network: the
// connections are stand-ins recording ping and terminate.
import FakeTimers from '@sinonjs/fake-timers'
import t, { type Test } from 'tap'
import type { SyncConnection } from '../src/sync/connection.js'
import { HEARTBEAT_TICK_MS, Liveness } from '../src/sync/liveness.js'

interface Peer {
  conn: SyncConnection
  pings: number[]
  terminatedAt: number | null
  /** Answers pings (sets alive, as the hub's 'pong' handler does) when true. */
  answering: boolean
}

function setup (t: Test, heartbeatMs: number) {
  const clock = FakeTimers.install({ toFake: ['setInterval', 'clearInterval', 'performance'] })
  const connections = new Set<SyncConnection>()
  const peers: Peer[] = []
  const liveness = new Liveness(connections, heartbeatMs)
  t.teardown(() => { liveness.stop(); clock.uninstall() })
  const add = (answering = true): Peer => {
    const peer: Peer = { pings: [], terminatedAt: null, answering, conn: null as unknown as SyncConnection }
    const conn = {
      alive: true,
      pingedAt: 0,
      closeCode: undefined as number | undefined,
      socket: {
        ping () {
          peer.pings.push(clock.now)
          // The pong arrives later, in its own turn of the loop (here: at once after the tick).
          if (peer.answering) queueMicrotask(() => { conn.alive = true })
        },
        terminate () { peer.terminatedAt = clock.now; connections.delete(peer.conn) }
      }
    }
    peer.conn = conn as unknown as SyncConnection
    connections.add(peer.conn)
    peers.push(peer)
    return peer
  }
  return { clock, connections, peers, add }
}

t.test('pings go out in slices over the interval, each peer once per interval', async (t) => {
  const heartbeatMs = 5000
  const { clock, peers, add } = setup(t, heartbeatMs)
  for (let i = 0; i < 1000; i++) add()
  const slices = heartbeatMs / HEARTBEAT_TICK_MS
  const perTick: number[] = []
  let before = 0
  for (let tick = 0; tick < 3 * slices; tick++) {
    await clock.tickAsync(HEARTBEAT_TICK_MS)
    const total = peers.reduce((a, p) => a + p.pings.length, 0)
    perTick.push(total - before)
    before = total
  }
  t.ok(Math.max(...perTick) <= Math.ceil(1000 / slices), `at most ${Math.ceil(1000 / slices)} pings per tick (max seen ${Math.max(...perTick)})`)
  t.ok(perTick.filter((n) => n > 0).length >= slices * 2, 'pings are spread over the ticks, not bunched')
  for (const p of peers) {
    t.equal(p.pings.length, 3, 'three intervals, three pings')
    const gaps = p.pings.slice(1).map((at, i) => at - p.pings[i])
    if (gaps.some((g) => g !== heartbeatMs)) { t.fail(`gaps ${gaps.join(', ')}`); break }
  }
  t.ok(peers.every((p) => p.terminatedAt === null), 'nobody answering is dropped')
})

t.test('a silent peer is dropped after a whole interval without an answer, within three', async (t) => {
  const heartbeatMs = 2000
  const { clock, peers, add } = setup(t, heartbeatMs)
  for (let i = 0; i < 50; i++) add()
  const silent = add(false)
  await clock.tickAsync(4 * heartbeatMs)
  t.not(silent.terminatedAt, null, 'terminated')
  const last = silent.pings.at(-1)!
  t.equal(silent.pings.length, 1, 'not pinged again once it stopped answering')
  t.ok(silent.terminatedAt! - last >= heartbeatMs - HEARTBEAT_TICK_MS / 2, `after a whole interval (${silent.terminatedAt! - last} ms after its ping)`)
  t.ok(silent.terminatedAt! - last <= 3 * heartbeatMs, 'within three intervals')
  t.equal(peers.filter((p) => p.terminatedAt !== null).length, 1, 'only that one')
})

t.test('a live peer whose place moves up (others leave) is not dropped', async (t) => {
  const heartbeatMs = 1000
  const { clock, connections, peers, add } = setup(t, heartbeatMs)
  for (let i = 0; i < 99; i++) add()
  const last = add()
  // Its first ping comes at the end of the first round.
  await clock.tickAsync(heartbeatMs)
  t.equal(last.pings.length, 1)
  // Everyone before it leaves: in the next round it is first, a tick after its last ping; the
  // pong is not in yet (it answers late this time).
  last.answering = false
  for (const p of peers.slice(0, 99)) connections.delete(p.conn)
  await clock.tickAsync(HEARTBEAT_TICK_MS * 2)
  t.equal(last.terminatedAt, null, 'not dropped a tick after its ping')
  last.conn.alive = true // the pong arrives
  last.answering = true
  await clock.tickAsync(3 * heartbeatMs)
  t.equal(last.terminatedAt, null, 'still there')
  t.ok(last.pings.length >= 3, 'and pinged every interval')
})

t.test('no connections: a tick does nothing; newcomers join the next round', async (t) => {
  const { clock, add } = setup(t, 1000)
  await clock.tickAsync(2500)
  const late = add()
  await clock.tickAsync(1000)
  t.equal(late.pings.length, 1, 'pinged within the next interval')
})
