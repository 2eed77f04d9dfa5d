import { join } from 'node:path'
import t from 'tap'
import { createPostgresStore } from '../src/store/postgres.js'
import { createSqliteStore } from '../src/store/sqlite.js'
import type { Store } from '../src/store/types.js'
import { PG_URL, pgSchema, tempDir } from './helper.js'
import { storeConformance } from './store.conformance.js'

const closing = (t: { teardown: (fn: () => unknown) => void }, store: Store) => {
  let closed = false
  const close = store.close.bind(store)
  store.close = async () => { if (!closed) { closed = true; await close() } }
  t.teardown(() => store.close())
  return store
}

t.test('sqlite', async (t) => {
  storeConformance(t, async (t) => closing(t, createSqliteStore(join(tempDir(t), 'db.sqlite'))))
})

t.test('postgres', async (t) => {
  storeConformance(t, async (t) => closing(t, await createPostgresStore({ connectionString: PG_URL, schema: await pgSchema(t) })))
})

t.test('sqlite data survives reopening the file', async (t) => {
  const file = join(tempDir(t), 'db.sqlite')
  const first = createSqliteStore(file)
  const logo = await first.createLogo({ title: 'Keep', imageUrl: 'https://x.test/k.png' })
  await first.castVote(logo._id, 'alice')
  await first.close()
  const second = closing(t, createSqliteStore(file))
  t.same(await second.getLogo(logo._id), { ...logo, totalVotes: 1, version: 2 })
  t.same(await second.userVotes('alice'), [logo._id])
})

t.test('postgres migrations run once when replicas boot together', async (t) => {
  const schema = await pgSchema(t)
  const stores = await Promise.all([1, 2, 3].map(() => createPostgresStore({ connectionString: PG_URL, schema })))
  for (const s of stores) closing(t, s)
  t.equal(await stores[0].countLogos(), 0)
  t.same(await stores[1].getDeadline(), { deadline: null, version: 1 })
})
