// One store conformance suite, run unchanged against every adapter (SQLite, PostgreSQL).
import type { Test } from 'tap'
import { NotFoundError, VotingClosedError, type Store } from '../src/store/types.js'

export function storeConformance (t: Test, makeStore: (t: Test) => Promise<Store>): void {
  const input = { title: 'Aurora', imageUrl: 'https://example.com/a.png', description: 'd', author: 'a' }

  t.test('creates, reads, lists logos with version 1 and zero votes', async (t) => {
    const store = await makeStore(t)
    const logo = await store.createLogo(input)
    t.match(logo, { title: 'Aurora', imageUrl: 'https://example.com/a.png', description: 'd', author: 'a', totalVotes: 0, version: 1 })
    t.match(logo._id, /^[A-Za-z0-9_-]{1,64}$/)
    t.ok(!Number.isNaN(Date.parse(logo.createdAt)))
    t.same(await store.getLogo(logo._id), logo)
    t.same(await store.listLogos(), [logo])
    t.equal(await store.countLogos(), 1)
    t.equal(await store.getLogo('missing'), null)
  })

  t.test('the list is in creation order, even for logos created in the same millisecond', async (t) => {
    const store = await makeStore(t)
    const titles = ['A', 'B', 'C', 'D', 'E', 'F']
    for (const title of titles) await store.createLogo({ ...input, title })
    t.same((await store.listLogos()).map((l) => l.title), titles)
  })

  t.test('optional fields are absent, not null', async (t) => {
    const store = await makeStore(t)
    const logo = await store.createLogo({ title: 'Bare', imageUrl: 'http://x.test/b.png' })
    t.notOk('description' in logo)
    t.notOk('author' in logo)
  })

  t.test('update bumps version and updatedAt; null clears optional fields', async (t) => {
    const store = await makeStore(t)
    const logo = await store.createLogo(input)
    await new Promise((resolve) => setTimeout(resolve, 5))
    const updated = await store.updateLogo(logo._id, { title: 'Borealis', description: null })
    t.equal(updated?.title, 'Borealis')
    t.equal(updated?.version, 2)
    t.notOk(updated && 'description' in updated)
    t.equal(updated?.author, 'a')
    t.ok(Date.parse(updated!.updatedAt) > Date.parse(logo.updatedAt))
    t.equal(await store.updateLogo('missing', { title: 'x' }), null)
  })

  t.test('delete removes the logo and its votes and reports the final version', async (t) => {
    const store = await makeStore(t)
    const logo = await store.createLogo(input)
    await store.castVote(logo._id, 'u1')
    const deleted = await store.deleteLogo(logo._id)
    t.same(deleted, { _id: logo._id, version: 3 })
    t.equal(await store.getLogo(logo._id), null)
    t.same(await store.userVotes('u1'), [])
    t.equal(await store.deleteLogo(logo._id), null)
  })

  t.test('votes are idempotent per (logo, user) and move count and version together', async (t) => {
    const store = await makeStore(t)
    const logo = await store.createLogo(input)
    const first = await store.castVote(logo._id, 'alice')
    t.same(first, { logoId: logo._id, totalVotes: 1, voted: true, version: 2, changed: true })
    const repeat = await store.castVote(logo._id, 'alice')
    t.same(repeat, { logoId: logo._id, totalVotes: 1, voted: true, version: 2, changed: false })
    await store.castVote(logo._id, 'bob')
    t.same(await store.getVotes(logo._id), { logoId: logo._id, totalVotes: 2, version: 3 })
    t.same(await store.userVotes('alice'), [logo._id])
    const retract = await store.retractVote(logo._id, 'alice')
    t.same(retract, { logoId: logo._id, totalVotes: 1, voted: false, version: 4, changed: true })
    const again = await store.retractVote(logo._id, 'alice')
    t.same(again, { logoId: logo._id, totalVotes: 1, voted: false, version: 4, changed: false })
    t.same(await store.userVotes('alice'), [])
    t.equal(await store.getVotes('missing'), null)
  })

  t.test('voting on a missing logo is NotFound and stores nothing', async (t) => {
    const store = await makeStore(t)
    await t.rejects(store.castVote('missing', 'alice'), NotFoundError)
    await t.rejects(store.retractVote('missing', 'alice'), NotFoundError)
    t.same(await store.userVotes('alice'), [])
  })

  t.test('deadline has its own version; votes after it are refused and change nothing', async (t) => {
    const store = await makeStore(t)
    const logo = await store.createLogo(input)
    t.same(await store.getDeadline(), { deadline: null, version: 1 })
    const future = new Date(Date.now() + 3_600_000).toISOString()
    t.same(await store.setDeadline(future), { deadline: future, version: 2 })
    await store.castVote(logo._id, 'alice')
    const past = '2020-01-01T00:00:00.000Z'
    t.same(await store.setDeadline('2020-01-01T01:00:00+01:00'), { deadline: past, version: 3 })
    await t.rejects(store.castVote(logo._id, 'bob'), VotingClosedError)
    await t.rejects(store.retractVote(logo._id, 'alice'), VotingClosedError)
    t.same(await store.getVotes(logo._id), { logoId: logo._id, totalVotes: 1, version: 2 })
    t.same(await store.setDeadline(null), { deadline: null, version: 4 })
    t.equal((await store.castVote(logo._id, 'bob')).totalVotes, 2)
  })

  t.test('concurrent votes leave totalVotes equal to distinct voters', async (t) => {
    const store = await makeStore(t)
    const [a, b] = [await store.createLogo(input), await store.createLogo({ ...input, title: 'B' })]
    const ops: Promise<unknown>[] = []
    for (let i = 0; i < 200; i++) {
      const logo = i % 2 === 0 ? a : b
      ops.push(store.castVote(logo._id, `u${i % 60}`))
      if (i % 5 === 0) ops.push(store.retractVote(logo._id, `u${(i + 10) % 60}`))
    }
    await Promise.all(ops)
    for (const logo of [a, b]) {
      const count = await store.getVotes(logo._id)
      const voters = new Set<string>()
      for (let u = 0; u < 60; u++) if ((await store.userVotes(`u${u}`)).includes(logo._id)) voters.add(`u${u}`)
      t.equal(count?.totalVotes, voters.size, `${logo.title}: count equals distinct voters`)
    }
  })

  t.test('ping answers while open and the store closes cleanly', async (t) => {
    const store = await makeStore(t)
    await store.ping()
    await store.close()
    t.pass('closed')
  })
}
