// ChangeFeed, the bus-to-channels step of the sync hub, on its own: conflation windows, the
// version rules for late and out-of-order events, gap reads, and a bus resync in the middle of
// a window. No sockets and no store: the target records what would be fanned out, getLogo
// answers from a map, and the clock is a fake one (@sinonjs/fake-timers).
import FakeTimers from '@sinonjs/fake-timers'
import t, { type Test } from 'tap'
import type { BusEvent } from '../src/bus/types.js'
import type { Logo } from '../src/domain.js'
import { ChangeFeed } from '../src/sync/feed.js'

const WINDOW = 50

interface Sent { channel: string, type: string, version: number | null, data: unknown, key?: string }

const logo = (id: string, version: number, totalVotes = 0, title = `${id}@${version}`): Logo => ({
  _id: id, title, imageUrl: 'https://example.com/x.png', totalVotes, version, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z'
})
const vote = (logoId: string, version: number, totalVotes: number, userId = 'u1'): BusEvent => ({ kind: 'votes', logoId, version, totalVotes, userId, voted: true })

function setup (t: Test, conflateMs = WINDOW) {
  const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date'], now: 1_000_000 })
  t.teardown(() => clock.uninstall())
  const sent: Sent[] = []
  const subscribed = new Set(['logos', 'logos.a', 'logos.a.votes', 'logos.b', 'logos.b.votes', 'voting.deadline', 'users.u1.votes'])
  const stored = new Map<string, Logo>()
  const reads: string[] = []
  const refreshed: Array<string | undefined> = []
  const warnings: string[] = []
  let failing = 0
  let gate: Promise<void> | null = null
  const feed = new ChangeFeed({
    has: (channel) => subscribed.has(channel),
    broadcast: (channel, type, version, data, o) => { sent.push({ channel, type, version, data, ...(o?.key ? { key: o.key } : {}) }) },
    refreshUserVotes: (sub) => { refreshed.push(sub) },
    refreshUserVotesHolding: (logoId) => { refreshed.push(`holding ${logoId}`) },
    async getLogo (id) {
      reads.push(id)
      const row = stored.get(id) ?? null // what the store holds when the read starts
      if (gate) await gate
      if (failing > 0) { failing--; throw new Error('store down') }
      return row
    },
    warn: (_obj, msg) => { warnings.push(msg) }
  }, conflateMs)
  t.teardown(() => feed.close())
  const publish = (event: BusEvent) => feed.handle({ event, origin: 'replica', publishedAt: Date.now() })
  /** Takes what was sent so far. */
  const take = () => sent.splice(0)
  /** Holds every getLogo until the returned function is called. */
  const hold = () => {
    let release!: () => void
    gate = new Promise((resolve) => { release = resolve })
    return () => { gate = null; release() }
  }
  return { clock, feed, publish, take, stored, reads, refreshed, warnings, subscribed, hold, failNextReads: (n: number) => { failing = n } }
}

t.test('votes in one window go out once, with the newest count, on every channel that shows them', async (t) => {
  const { clock, publish, take } = setup(t)
  publish({ kind: 'logo.created', logo: logo('a', 1) })
  take()
  publish(vote('a', 2, 1))
  publish(vote('a', 3, 2))
  publish(vote('a', 4, 3))
  t.same(take(), [], 'nothing before the window closes')
  await clock.tickAsync(WINDOW - 1)
  t.same(take(), [], 'still nothing 1 ms before')
  await clock.tickAsync(1)
  t.same(take(), [
    { channel: 'logos.a.votes', type: 'updated', version: 4, data: 3 },
    { channel: 'logos.a', type: 'updated', version: 4, data: logo('a', 4, 3, 'a@1') },
    { channel: 'logos', type: 'votes', version: null, data: { a: { totalVotes: 3, version: 4 } }, key: 'logos#votes' }
  ], 'one frame per channel, the newest count, the title of the logo held')
  publish(vote('a', 5, 4))
  await clock.tickAsync(WINDOW)
  t.same(take().map((s) => [s.channel, s.version]), [['logos.a.votes', 5], ['logos.a', 5], ['logos', null]], 'the next window is its own')
})

t.test('a steady stream of votes still goes out once per window, not when it stops', async (t) => {
  const { clock, publish, take } = setup(t)
  publish({ kind: 'logo.created', logo: logo('a', 1) })
  take()
  const sentAt: Array<[number, number | null]> = []
  const start = Date.now()
  for (let version = 2; version <= 21; version++) {
    publish(vote('a', version, version - 1))
    await clock.tickAsync(10)
    for (const s of take()) if (s.channel === 'logos.a.votes') sentAt.push([Date.now() - start, s.version])
  }
  t.same(sentAt, [[50, 6], [100, 11], [150, 16], [200, 21]], 'every 50 ms the newest count of that window')
})

t.test('the list gets one batch for every logo that moved in the window', async (t) => {
  const { clock, publish, take } = setup(t)
  publish({ kind: 'logo.created', logo: logo('a', 1) })
  publish({ kind: 'logo.created', logo: logo('b', 1) })
  take()
  publish(vote('a', 2, 1))
  publish(vote('b', 2, 1))
  publish(vote('b', 3, 2))
  await clock.tickAsync(WINDOW)
  const batches = take().filter((s) => s.channel === 'logos')
  t.same(batches, [{ channel: 'logos', type: 'votes', version: null, data: { a: { totalVotes: 1, version: 2 }, b: { totalVotes: 2, version: 3 } }, key: 'logos#votes' }])
})

t.test('SYNC_CONFLATE_MS=0 sends on the next turn of the event loop, still once per burst', async (t) => {
  const { clock, publish, take } = setup(t, 0)
  publish({ kind: 'logo.created', logo: logo('a', 1) })
  take()
  publish(vote('a', 2, 1))
  publish(vote('a', 3, 2))
  t.same(take(), [], 'not synchronously')
  await clock.tickAsync(0)
  t.same(take().map((s) => [s.channel, s.version]), [['logos.a.votes', 3], ['logos.a', 3], ['logos', null]])
})

t.test('a late older version after a newer one is never sent', async (t) => {
  const { clock, publish, take } = setup(t)
  publish({ kind: 'logo.created', logo: logo('a', 1) })
  publish({ kind: 'logo.updated', logo: logo('a', 3, 0, 'new title') })
  take()
  publish({ kind: 'logo.updated', logo: logo('a', 2, 0, 'old title') })
  publish(vote('a', 2, 1))
  publish(vote('a', 3, 1))
  await clock.tickAsync(WINDOW)
  t.same(take(), [], 'an older edit and older or equal vote counts change nothing')
  publish({ kind: 'deadline', deadline: '2030-01-01T00:00:00.000Z', version: 5 })
  publish({ kind: 'deadline', deadline: '2029-01-01T00:00:00.000Z', version: 4 })
  t.same(take(), [{ channel: 'voting.deadline', type: 'updated', version: 5, data: '2030-01-01T00:00:00.000Z' }], 'an older deadline is dropped')
})

t.test('a vote that skips a version is a gap: the logo is read before a whole logo or list entry goes out', async (t) => {
  const { clock, publish, take, stored, reads, hold } = setup(t)
  publish({ kind: 'logo.created', logo: logo('a', 1) })
  take()
  // Version 2 (say a rename on another replica) never arrived; 3 is a vote.
  stored.set('a', logo('a', 3, 1, 'renamed'))
  const release = hold()
  publish(vote('a', 3, 1))
  await clock.tickAsync(WINDOW)
  t.same(take(), [{ channel: 'logos.a.votes', type: 'updated', version: 3, data: 1 }], 'the count alone is safe to send')
  t.same(reads, ['a'], 'one read to close the gap')
  release()
  await clock.tickAsync(0)
  t.same(take(), [
    { channel: 'logos.a', type: 'updated', version: 3, data: logo('a', 3, 1, 'renamed') },
    { channel: 'logos', type: 'updated', version: 3, data: logo('a', 3, 1, 'renamed'), key: 'logos#a' }
  ], 'then the whole logo as read, never the old title under the new version')
  publish(vote('a', 4, 2))
  await clock.tickAsync(WINDOW)
  t.same(take().find((s) => s.channel === 'logos.a'), { channel: 'logos.a', type: 'updated', version: 4, data: logo('a', 4, 2, 'renamed') })
  t.same(reads, ['a'], 'the next vote builds on what was read: no second read')
})

t.test('a gap read that lags behind the logo held sends the one held, never older after newer', async (t) => {
  const { clock, publish, take, stored } = setup(t)
  publish({ kind: 'logo.updated', logo: logo('a', 5, 2, 'five') })
  take()
  stored.set('a', logo('a', 4, 2, 'four')) // a cached read from before the update
  publish(vote('a', 7, 3)) // version 6 went missing: a gap
  await clock.tickAsync(WINDOW)
  await clock.tickAsync(0)
  t.same(take().filter((s) => s.channel === 'logos.a').map((s) => (s.data as Logo).title), ['five'])
})

t.test('votes that arrive while a gap read is in flight: another read follows, and versions only go up', async (t) => {
  const { clock, publish, take, stored, reads, hold } = setup(t)
  stored.set('a', logo('a', 5, 3))
  const release = hold()
  publish(vote('a', 5, 3))
  await clock.tickAsync(WINDOW)
  t.same(reads, ['a'], 'the read starts at version 5')
  stored.set('a', logo('a', 7, 5))
  publish(vote('a', 6, 4))
  publish(vote('a', 7, 5))
  await clock.tickAsync(WINDOW)
  t.same(reads, ['a'], 'the window closed while the read was out: no second read meanwhile')
  release()
  await clock.tickAsync(0)
  await clock.tickAsync(WINDOW)
  await clock.tickAsync(0)
  t.same(reads, ['a', 'a'], 'the read came back older than the events seen: read again')
  const whole = take().filter((s) => s.channel === 'logos.a').map((s) => s.version)
  t.same(whole, [5, 7], 'the whole logo as read, then the newer one; never older after newer')
  await clock.tickAsync(WINDOW * 3)
  t.same(reads, ['a', 'a'], 'and no more reads once it is current')
  t.same(take(), [])
})

t.test('a gap read that fails is retried after max(window, 1 s)', async (t) => {
  const { clock, publish, take, stored, reads, failNextReads, warnings } = setup(t)
  failNextReads(1)
  stored.set('a', logo('a', 4, 2))
  publish(vote('a', 4, 2))
  await clock.tickAsync(WINDOW)
  t.same(take().map((s) => s.channel), ['logos.a.votes'])
  t.same(reads, ['a'])
  t.same(warnings, ['could not read a logo to close a version gap; retrying'])
  await clock.tickAsync(999)
  t.same(reads, ['a'], 'no retry before a second')
  await clock.tickAsync(1 + WINDOW)
  t.same(reads, ['a', 'a'], 'retried')
  t.same(take().filter((s) => s.channel === 'logos.a').map((s) => s.version), [4], 'and the whole logo went out')
})

t.test('a gap on a logo nobody shows whole costs no read', async (t) => {
  const { clock, publish, take, reads, subscribed } = setup(t)
  subscribed.delete('logos')
  subscribed.delete('logos.a')
  publish(vote('a', 9, 1))
  await clock.tickAsync(WINDOW)
  t.same(take().map((s) => s.channel), ['logos.a.votes'])
  t.same(reads, [])
})

t.test('a deletion drops the logo\'s pending votes, and later votes for it stay dropped', async (t) => {
  const { clock, publish, take, refreshed } = setup(t)
  publish({ kind: 'logo.created', logo: logo('a', 1) })
  publish(vote('a', 2, 1))
  take()
  publish({ kind: 'logo.deleted', logoId: 'a', version: 3 })
  t.same(take().map((s) => [s.channel, s.type, s.version]), [['logos.a', 'deleted', 3], ['logos.a.votes', 'deleted', 3], ['logos', 'deleted', 3]])
  t.same(refreshed, ['u1', 'holding a'], 'the voter\'s list, then the local users\' that may hold the deleted logo (the delete removed their votes)')
  publish(vote('a', 3, 0))
  await clock.tickAsync(WINDOW)
  t.same(take(), [], 'neither the vote of the window nor a late one goes out')
  publish({ kind: 'logo.deleted', logoId: 'a', version: 3 })
  t.same(take(), [], 'a repeated deletion is sent once')
})

t.test('a vote still on its way when a read found the logo gone is not sent', async (t) => {
  const { clock, publish, take, stored } = setup(t)
  stored.delete('a')
  publish(vote('a', 5, 2)) // a gap: the read finds no logo
  await clock.tickAsync(WINDOW)
  await clock.tickAsync(0)
  t.same(take().map((s) => [s.channel, s.type]).slice(-3), [['logos.a', 'deleted'], ['logos.a.votes', 'deleted'], ['logos', 'deleted']])
  publish(vote('a', 6, 3)) // cast before the deletion, delivered after the read
  await clock.tickAsync(WINDOW)
  t.same(take(), [], 'a deleted logo does not come back through its count')
})

t.test('a window that spans a bus resync sends nothing from before it; after it the first vote reads', async (t) => {
  const { clock, feed, publish, take, stored, reads, hold } = setup(t)
  publish({ kind: 'logo.created', logo: logo('a', 1) })
  publish({ kind: 'deadline', deadline: null, version: 2 })
  take()
  publish(vote('a', 2, 1))
  publish(vote('a', 3, 2))
  feed.reset()
  await clock.tickAsync(WINDOW)
  t.same(take(), [], 'the pending counts were dropped with what the feed knew (the resync re-reads every channel)')
  stored.set('a', logo('a', 4, 3))
  const release = hold()
  publish(vote('a', 4, 3))
  await clock.tickAsync(WINDOW)
  t.same(take().map((s) => s.channel), ['logos.a.votes'], 'only the count: the base logo was forgotten')
  t.same(reads, ['a'], 'so the whole logo is read')
  release()
  await clock.tickAsync(0)
  t.same(take().map((s) => [s.channel, s.version]), [['logos.a', 4], ['logos', 4]])
  publish({ kind: 'deadline', deadline: null, version: 1 })
  t.same(take().map((s) => s.version), [1], 'the deadline\'s version was forgotten too: the next one goes out')
})

t.test('a closed feed sends nothing, even from a window already open', async (t) => {
  const { clock, feed, publish, take } = setup(t)
  publish({ kind: 'logo.created', logo: logo('a', 1) })
  take()
  publish(vote('a', 2, 1))
  feed.close()
  await clock.tickAsync(WINDOW * 2)
  publish(vote('a', 3, 2))
  publish({ kind: 'logo.updated', logo: logo('a', 4, 2) })
  await clock.tickAsync(WINDOW * 2)
  t.same(take(), [], 'nor anything that arrives after')
})
