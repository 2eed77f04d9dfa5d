// Two server processes on one PostgreSQL take 1,000 concurrent votes from 500 users;
// every logo's totalVotes must equal its number of distinct voters.
import pg from 'pg'
import t from 'tap'
import { PG_URL, bearer, startServer, token } from './helper.js'
import { pgSchema } from './helper.js'

t.test('1,000 concurrent votes over two processes on one PostgreSQL count exactly', async (t) => {
  const schema = await pgSchema(t)
  const env = { DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema, RATE_LIMIT_MAX: '100000', VOTE_RATE_LIMIT: '1000' }
  const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])
  const admin = await token('root', 'admin')
  const logos: { _id: string }[] = []
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${a.http}/logos`, { method: 'POST', headers: { ...bearer(admin), 'content-type': 'application/json' }, body: JSON.stringify({ title: `L${i}`, imageUrl: `https://x.test/${i}.png` }) })
    t.equal(res.status, 201)
    logos.push(await res.json() as { _id: string })
  }

  // Users 0..249 send the same vote twice, once through each process, at the same time (a repeat
  // must never count twice); users 250..499 vote for two different logos, one through each.
  const expected = new Map<string, Set<string>>(logos.map((l) => [l._id, new Set()]))
  const requests: { server: string, logoId: string, tok: string }[] = []
  for (let u = 0; u < 500; u++) {
    const tok = await token(`user${u}`)
    const first = logos[u % 4]._id
    const second = u < 250 ? first : logos[(u + 1) % 4]._id
    expected.get(first)!.add(`user${u}`)
    expected.get(second)!.add(`user${u}`)
    requests.push({ server: a.http, logoId: first, tok }, { server: b.http, logoId: second, tok })
  }
  t.equal(requests.length, 1000)
  const statuses = await Promise.all(requests.map(async ({ server, logoId, tok }) => {
    const res = await fetch(`${server}/logos/${logoId}/votes`, { method: 'POST', headers: bearer(tok) })
    await res.arrayBuffer()
    return res.status
  }))
  t.same([...new Set(statuses)], [200], 'every vote answered 200')

  const db = new pg.Client({ connectionString: PG_URL })
  await db.connect()
  t.teardown(() => db.end())
  for (const logo of logos) {
    const { rows: [{ n }] } = await db.query(`SELECT COUNT(DISTINCT user_id)::int AS n FROM ${schema}.votes WHERE logo_id = $1`, [logo._id])
    const viaA = await (await fetch(`${a.http}/logos/${logo._id}`)).json() as { totalVotes: number }
    const viaB = await (await fetch(`${b.http}/logos/${logo._id}/votes`)).json() as { totalVotes: number }
    t.equal(n, expected.get(logo._id)!.size, 'distinct voters stored as expected')
    t.equal(viaA.totalVotes, n, 'totalVotes equals distinct voters (process A)')
    t.equal(viaB.totalVotes, n, 'totalVotes equals distinct voters (process B)')
  }
})
