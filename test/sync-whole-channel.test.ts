// Whole channels (src/sync/whole-channel.ts) on their own: a deleted logo re-reads only the
// `users.<sub>.votes` that may hold it (the last read did, or no read settles it), never every
// local user's. No network: the store is a map of user → logo ids, reads can be held open.
import t from 'tap'
import type { Logo } from '../src/domain.js'
import { parseChannel, type WholeChannel } from '../src/sync/channels.js'
import { WholeChannels, type ReadWholeChannel } from '../src/sync/whole-channel.js'

function setup () {
  const votes = new Map<string, string[]>([['u1', ['a', 'b']], ['u2', ['c']], ['u3', []]])
  const reads: string[] = []
  const pushed: Array<{ channel: string, data: unknown }> = []
  let hold: Promise<void> | null = null
  const whole = new WholeChannels({
    readList: async () => [] as Logo[],
    async readUserVotes (sub) {
      reads.push(sub)
      const ids = [...(votes.get(sub) ?? [])] // what the store holds when the read starts
      if (hold) await hold
      return ids
    },
    push: (channel, _type, data) => { pushed.push({ channel, data }) },
    warn: () => {}
  })
  const channel = (sub: string) => parseChannel(`users.${sub}.votes`) as Extract<WholeChannel, ReadWholeChannel>
  const settle = () => new Promise((resolve) => setImmediate(resolve))
  return { votes, reads, pushed, whole, channel, settle, holdReads: () => { let release!: () => void; hold = new Promise((resolve) => { release = resolve }); return () => { hold = null; release() } } }
}

t.test('a deleted logo re-reads only the users whose last read held it', async (t) => {
  const { votes, reads, pushed, whole, channel, settle } = setup()
  for (const sub of ['u1', 'u2', 'u3']) await whole.snapshot(channel(sub))
  reads.length = 0
  votes.set('u1', ['b']) // logo a deleted, its votes with it
  whole.refreshUserVotesHolding('a')
  await settle()
  t.same(reads, ['u1'], 'one read, for the one user who held a')
  t.same(pushed, [{ channel: 'users.u1.votes', data: ['b'] }], 'and the new state pushed to its subscribers')
  whole.refreshUserVotesHolding('zz')
  await settle()
  t.same(reads, ['u1'], 'a logo nobody held: no read at all')
})

t.test('a user whose read is still running is re-read anyway', async (t) => {
  const { votes, reads, whole, channel, settle, holdReads } = setup()
  await whole.snapshot(channel('u2'))
  const release = holdReads()
  const first = whole.snapshot(channel('u3')) // running: it may or may not see the deletion
  await settle()
  votes.set('u3', [])
  reads.length = 0
  whole.refreshUserVotesHolding('a')
  release()
  await first
  await settle()
  t.same(reads, ['u3'], 'the running one is read again after it; u2 (settled, without a) is not')
})
