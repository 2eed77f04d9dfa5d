// What a subscriber still needs, on its own: how two pending changes for one key combine
// (keepNewer, mergeVotesBatches), what a Subscription lets through while and after its state is
// read, and a slow consumer's backlog. The orderings here are the ones that are hard to hit over
// real sockets: a late older version after a newer one, a vote batch held across a resync, a
// burst far larger than the backlog. No network: the connection writes to a recording stand-in
// for a ws socket whose bufferedAmount the test sets; the clock is a fake one.
import FakeTimers from '@sinonjs/fake-timers'
import t, { type Test } from 'tap'
import type { WebSocket } from 'ws'
import type { VotesBatch } from '../src/protocol.js'
import { keepNewer, listItemKey, listVotesKey, makeBroadcast, mergeVotesBatches, type Broadcast } from '../src/sync/broadcast.js'
import { parseChannel } from '../src/sync/channels.js'
import { SyncConnection } from '../src/sync/connection.js'
import { SyncStats } from '../src/sync/stats.js'
import { Subscription } from '../src/sync/subscription.js'

const LIST = 'logos'
const item = (id: string, version: number, type: 'created' | 'updated' | 'deleted' = 'updated') =>
  makeBroadcast(LIST, type, version, { _id: id, version }, { key: listItemKey(LIST, id), itemId: id })
const batch = (entries: Record<string, number>) => {
  const data: VotesBatch = {}
  for (const [id, version] of Object.entries(entries)) data[id] = { totalVotes: version * 10, version }
  return makeBroadcast(LIST, 'votes', null, data, { key: listVotesKey(LIST) })
}
/** A votes batch as { item: version }. */
const versionsOf = (data: unknown) => Object.fromEntries(Object.entries(data as VotesBatch).map(([id, e]) => [id, e.version]))
const versions = (b: Broadcast | null) => b && versionsOf(b.data)
const logoFrame = (version: number) => makeBroadcast('logos.a', 'updated', version, { _id: 'a', version })

const subscription = (name: string) => new Subscription(parseChannel(name)!)

t.test('keepNewer: the later change wins, unless it is older than the one held', async (t) => {
  t.equal(keepNewer(item('a', 3), item('a', 5)).version, 5)
  t.equal(keepNewer(item('a', 5), item('a', 3)).version, 5, 'a late older version after a newer one keeps the newer')
  t.equal(keepNewer(item('a', 5), item('a', 5, 'deleted')).type, 'deleted', 'same version: the later (a deletion after its own update)')
  const snapshot = makeBroadcast('users.u.votes', 'updated', null, ['x'], { readSeq: 2 })
  t.equal(keepNewer(makeBroadcast('users.u.votes', 'updated', null, [], { readSeq: 1 }), snapshot), snapshot, 'versionless: the later')
})

t.test('mergeVotesBatches: newest entry per item, whichever batch it came in', async (t) => {
  t.same(versions(mergeVotesBatches(batch({ a: 3, b: 7 }), batch({ a: 4, c: 1 }))), { a: 4, b: 7, c: 1 })
  t.same(versions(mergeVotesBatches(batch({ a: 9 }), batch({ a: 4 }))), { a: 9 }, 'an older batch arriving second does not undo a newer count')
  const merged = keepNewer(batch({ a: 2 }), batch({ b: 2 }))
  t.same(versions(merged), { a: 2, b: 2 }, 'keepNewer merges two batches')
  t.equal(merged.key, listVotesKey(LIST))
  t.same(JSON.parse(merged.bytes.toString()), { channel: LIST, type: 'votes', version: null, data: merged.data }, 'and serialises the merge')
})

t.test('a versioned subscription: changes wait while the state is read, then only newer ones pass', async (t) => {
  const sub = subscription('logos.a')
  t.ok(sub.loading)
  t.equal(sub.accept(logoFrame(4)), null, 'held while loading')
  t.equal(sub.accept(logoFrame(6)), null)
  t.equal(sub.accept(logoFrame(5)), null, 'a late older one does not replace the newer one waiting')
  const waited = sub.sent({ version: 5 })
  t.notOk(sub.loading)
  t.same(waited.map((b) => b.version), [6], 'of what waited, only what is newer than the state sent')
  t.equal(sub.accept(logoFrame(6)), null, 'already sent')
  t.equal(sub.accept(logoFrame(5)), null, 'a late older version after a newer one')
  t.equal(sub.accept(logoFrame(7))?.version, 7)
})

t.test('a client whose since was current holds that version: only newer ones pass', async (t) => {
  const sub = subscription('voting.deadline')
  t.same(sub.sent({ version: 3 }), [])
  t.equal(sub.accept(makeBroadcast('voting.deadline', 'updated', 3, null)), null)
  t.ok(sub.accept(makeBroadcast('voting.deadline', 'updated', 4, null)))
})

t.test('the list: what waited during the read is kept only where the snapshot is older', async (t) => {
  const sub = subscription(LIST)
  t.notOk(sub.versioned, 'the list has no single version')
  sub.accept(item('a', 4)) // older than the snapshot's a@5
  sub.accept(item('b', 8)) // newer than the snapshot's b@7
  sub.accept(item('c', 2, 'deleted')) // not in the snapshot: already gone
  sub.accept(item('d', 1, 'created')) // not in the snapshot: created after it
  sub.accept(batch({ a: 5, b: 9 })) // a@5 is in the snapshot, b@9 is not
  sub.accept(makeBroadcast(LIST, 'snapshot', null, [], { readSeq: 3 })) // a refresh from the snapshot's own read
  const waited = sub.sent({ readSeq: 3, items: new Map([['a', 5], ['b', 7]]) })
  t.same(waited.map((b) => [b.type, b.itemId ?? null, b.version]), [['updated', 'b', 8], ['created', 'd', 1], ['votes', null, null]])
  t.same(versions(waited[2]), { b: 9 }, 'the batch keeps only the entry newer than the snapshot')
  t.same(sub.accept(item('a', 3))?.version, 3, 'afterwards list items pass as they come (the client orders them by version)')
})

t.test('a whole channel: a refresh from a read before the snapshot is dropped, a later one kept', async (t) => {
  const sub = subscription('users.u.votes')
  sub.accept(makeBroadcast('users.u.votes', 'updated', null, ['x'], { readSeq: 4 }))
  t.same(sub.sent({ readSeq: 4, items: null }), [], 'same read as the snapshot')
  const sub2 = subscription('users.u.votes')
  sub2.accept(makeBroadcast('users.u.votes', 'updated', null, ['x', 'y'], { readSeq: 5 }))
  t.same(sub2.sent({ readSeq: 4, items: null }).map((b) => b.data), [['x', 'y']], 'a later read')
})

function connection (t: Test, maxBufferBytes = 1000, slowConsumerMs = 5000) {
  const clock = FakeTimers.install({ toFake: ['Date'], now: 1_000_000 })
  t.teardown(() => clock.uninstall())
  const received: Array<{ channel: string, type: string, version: number | null, data: unknown }> = []
  const socket = {
    OPEN: 1,
    CLOSED: 3,
    readyState: 1,
    bufferedAmount: 0,
    send (bytes: Buffer) { received.push(JSON.parse(bytes.toString())) },
    close () { this.readyState = 3 },
    terminate () { this.readyState = 3 }
  }
  const stats = new SyncStats()
  let behind = 0
  const conn = new SyncConnection(socket as unknown as WebSocket, { rateLimit: 100, maxBufferBytes, slowConsumerMs }, stats, () => { behind++ })
  for (const name of [LIST, 'logos.a']) {
    const sub = subscription(name)
    sub.sent(name === LIST ? { readSeq: 0, items: null } : { version: 0 })
    conn.subs.set(name, sub)
  }
  return { clock, conn, socket, received, stats, behindCalls: () => behind }
}

t.test('a burst far larger than the backlog: held newest per key, drained in order, never older after newer', async (t) => {
  const { conn, socket, received, stats, behindCalls } = connection(t)
  socket.bufferedAmount = 10_000 // the client stopped reading
  const ids = ['a', 'b', 'c', 'd', 'e']
  let sent = 0
  // 2,000 changes: list items arriving out of order across replicas, vote batches, and the
  // versioned logos.a channel.
  for (let round = 1; round <= 200; round++) {
    for (const id of ids) {
      const version = round % 7 === 0 ? round - 5 : round // now and then a late older one
      conn.deliver(item(id, version)); sent++
    }
    conn.deliver(batch({ a: round, b: round })); sent++
    conn.deliver(logoFrame(round)); sent++
    conn.deliver(logoFrame(round - 1)); sent++ // late and older: dropped by the subscription
  }
  for (const id of ids) { conn.deliver(item(id, 150)); sent++ } // the last word is a late older one
  t.equal(received.length, 0, 'nothing written while the socket is over its buffer')
  t.equal(behindCalls(), 1, 'the hub is asked to drain once')
  socket.bufferedAmount = 0
  t.equal(conn.drain(), 'drained')
  t.ok(received.length <= ids.length + 2, `at most one frame per key (${received.length} for ${sent} changes)`)
  const items = received.filter((f) => f.channel === LIST && f.type === 'updated')
  t.same(items.map((f) => (f.data as { _id: string })._id), ids, 'each list item once, in the order first held')
  t.ok(items.every((f) => f.version === 200), 'at its newest version, though older ones came later')
  t.same(received.filter((f) => f.channel === 'logos.a').map((f) => f.version), [200])
  // Each whole item held drops the held counts for it that are not newer: the last batch
  // ({ a: 200, b: 200 }) went when the late items re-asserted a@200 and b@200.
  t.same(received.filter((f) => f.type === 'votes'), [], 'no count the whole items already carry')
  t.ok(stats.superseded > 1000, 'the superseded frames are counted')
  conn.deliver(item('a', 150))
  t.same(received.at(-1)?.version, 150, 'once drained, frames go straight out again (the list orders by version on the client)')
})

t.test('a vote batch held across a resync: the resync\'s list snapshot replaces it, later counts follow it', async (t) => {
  const { conn, socket, received } = connection(t)
  socket.bufferedAmount = 10_000
  conn.deliver(batch({ a: 3, b: 3 }))
  conn.deliver(item('c', 2))
  // The bus came back from a gap: the list is re-read and pushed whole.
  conn.deliver(makeBroadcast(LIST, 'snapshot', null, [{ _id: 'a', version: 4 }], { readSeq: 1 }))
  conn.deliver(batch({ a: 5 }))
  socket.bufferedAmount = 0
  conn.drain()
  t.same(received.map((f) => f.type), ['snapshot', 'votes'], 'what was held before the snapshot is gone; the count after it stays')
  t.same(versionsOf(received[1].data), { a: 5 })
})

t.test('a whole list item held supersedes the vote counts held for it that are not newer', async (t) => {
  const { conn, socket, received } = connection(t)
  socket.bufferedAmount = 10_000
  conn.deliver(batch({ a: 3, b: 3, c: 5 }))
  conn.deliver(item('a', 4))
  conn.deliver(item('c', 4))
  socket.bufferedAmount = 0
  conn.drain()
  t.same(received.map((f) => f.type === 'votes' ? versionsOf(f.data) : [f.type, f.version]), [{ b: 3, c: 5 }, ['updated', 4], ['updated', 4]],
    'a@3 went with the whole item a@4; c@5 is newer than c@4 and stays')
  received.length = 0
  socket.bufferedAmount = 10_000
  conn.deliver(batch({ a: 3 }))
  conn.deliver(item('a', 4))
  socket.bufferedAmount = 0
  conn.drain()
  t.same(received.map((f) => f.type), ['updated'], 'a batch left empty is dropped')
})

t.test('a client behind for longer than SYNC_SLOW_CONSUMER_MS is reported slow; one that catches up is not', async (t) => {
  const { clock, conn, socket } = connection(t, 1000, 5000)
  socket.bufferedAmount = 10_000
  conn.deliver(logoFrame(1))
  clock.tick(4000)
  t.equal(conn.drain(), 'behind')
  clock.tick(1001)
  t.equal(conn.drain(), 'slow')
  socket.bufferedAmount = 0
  t.equal(conn.drain(), 'drained')
  socket.bufferedAmount = 10_000
  conn.deliver(logoFrame(2))
  clock.tick(4999)
  t.equal(conn.drain(), 'behind', 'the clock starts again when it falls behind again')
})

t.test('leaving a channel forgets what was held for it', async (t) => {
  const { conn, socket, received } = connection(t)
  socket.bufferedAmount = 10_000
  conn.deliver(logoFrame(1))
  conn.deliver(item('a', 1))
  conn.forget('logos.a')
  socket.bufferedAmount = 0
  conn.drain()
  t.same(received.map((f) => f.channel), [LIST])
})
