// LogoTracker on its own: when a vote event can be applied to the whole logo held (exactly the
// next version) and when it leaves a gap that only a read can close; reads ahead of and behind
// the events; late older events; deletions and the reset after a bus gap.
import t from 'tap'
import type { Logo } from '../src/domain.js'
import { LogoTracker } from '../src/sync/logo-tracker.js'

// Note the argument order: observeVotes(id, totalVotes, version).

const logo = (version: number, totalVotes = 0, title = `v${version}`): Logo => ({
  _id: 'a', title, imageUrl: 'https://example.com/x.png', totalVotes, version, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z'
})

t.test('a vote at exactly the next version updates the whole logo held', async (t) => {
  const tracker = new LogoTracker()
  t.ok(tracker.observeLogo(logo(3, 1, 'title')))
  t.ok(tracker.observeVotes('a', 2, 4))
  t.same(tracker.current('a'), logo(4, 2, 'title'), 'same title, new count and version')
  t.ok(tracker.observeVotes('a', 3, 5))
  t.same(tracker.current('a'), logo(5, 3, 'title'), 'and again from there')
})

t.test('a vote that skips a version leaves a gap: no whole logo until a read', async (t) => {
  const tracker = new LogoTracker()
  tracker.observeLogo(logo(3, 1, 'old title'))
  t.ok(tracker.observeVotes('a', 2, 5), 'the vote itself is news')
  t.equal(tracker.current('a'), null, 'version 4 (perhaps a rename) is unknown: no whole logo')
  t.same(tracker.votesNewerThan('a', 0), { totalVotes: 2, version: 5 }, 'the count is known')
  t.ok(tracker.newerThan('a', 4))
  t.ok(tracker.observeVotes('a', 3, 6), 'later votes do not close the gap either')
  t.equal(tracker.current('a'), null)
  tracker.observeRead(logo(5, 2, 'new title'))
  t.equal(tracker.current('a'), null, 'a read older than the events seen does not close it')
  tracker.observeRead(logo(6, 3, 'new title'))
  t.same(tracker.current('a'), logo(6, 3, 'new title'), 'a read at the version seen does')
  t.ok(tracker.observeVotes('a', 4, 7))
  t.same(tracker.current('a'), logo(7, 4, 'new title'), 'and the next vote builds on it')
})

t.test('a late older event after a newer one is refused, whatever its kind', async (t) => {
  const tracker = new LogoTracker()
  t.ok(tracker.observeLogo(logo(5, 2, 'five')))
  t.notOk(tracker.observeLogo(logo(4, 1, 'four')), 'older edit')
  t.notOk(tracker.observeLogo(logo(5, 9, 'five again')), 'same version')
  t.notOk(tracker.observeVotes('a', 1, 4), 'older vote')
  t.notOk(tracker.observeVotes('a', 1, 5), 'vote at the same version')
  t.same(tracker.current('a'), logo(5, 2, 'five'), 'nothing moved')
  t.same(tracker.votesNewerThan('a', 0), { totalVotes: 2, version: 5 })
})

t.test('a read ahead of the events is held, but the events it is ahead of still count as news', async (t) => {
  const tracker = new LogoTracker()
  tracker.observeLogo(logo(3, 1))
  tracker.observeRead(logo(5, 3, 'read'))
  t.same(tracker.current('a'), logo(5, 3, 'read'), 'the read is the newest whole logo')
  t.ok(tracker.observeVotes('a', 2, 4), 'vote 4 still goes out to those who did not read')
  t.same(tracker.current('a'), logo(5, 3, 'read'), 'and does not replace the newer read')
  t.same(tracker.freshest(logo(4, 2)), logo(5, 3, 'read'), 'a lagging (cached) read is answered with the newer logo held')
  t.same(tracker.freshest(logo(6, 4)), logo(6, 4), 'a newer read wins')
  t.same(tracker.votesNewerThan('a', 4), { totalVotes: 3, version: 5 }, "the read's count is the newest")
  t.equal(tracker.votesNewerThan('a', 5), null)
})

t.test('deletion: whole logo and count forgotten; reads no newer than the deletion stay deleted', async (t) => {
  const tracker = new LogoTracker()
  tracker.observeLogo(logo(3, 1))
  tracker.observeDeleted('a', 4)
  t.ok(tracker.isDeleted('a'))
  t.equal(tracker.current('a'), null)
  t.equal(tracker.votesNewerThan('a', 0), null)
  t.notOk(tracker.observeVotes('a', 0, 4), "a late vote at or below the deletion's version")
  tracker.observeRead(logo(3, 1))
  t.equal(tracker.current('a'), null, 'a stale (cached) read does not bring it back')
  t.equal(tracker.votesNewerThan('a', 0), null, 'nor its count')
  t.ok(tracker.isDeleted('a'))
})

t.test('a deletion without a version (found by a read) keeps the highest version seen', async (t) => {
  const tracker = new LogoTracker()
  tracker.observeVotes('a', 2, 7)
  tracker.observeDeleted('a', null)
  t.ok(tracker.newerThan('a', 6))
  t.notOk(tracker.observeVotes('a', 2, 7), 'the vote already seen is still refused')
})

t.test('reset after a bus gap forgets everything', async (t) => {
  const tracker = new LogoTracker()
  tracker.observeLogo(logo(5, 2))
  tracker.observeDeleted('b', 3)
  tracker.reset()
  t.equal(tracker.current('a'), null)
  t.notOk(tracker.isDeleted('b'))
  t.notOk(tracker.newerThan('a', 0))
  t.ok(tracker.observeLogo(logo(2, 0)), 'an event older than before the gap is news again (the resync re-reads anyway)')
})
