// Two server processes on one PostgreSQL take 1,000 concurrent votes from 500 users; every
// logo's totalVotes must equal its number of distinct voters, in the store and as each process
// serves it, on PostgreSQL alone (LISTEN/NOTIFY bus) and on PostgreSQL with Redis.
import pg from 'pg'
import t from 'tap'
import { PG_URL, SCALED_MODES, bearer, eventually, scaledEnv, startServer, token } from './helper.js'

for (const mode of SCALED_MODES) {
  t.test(`1,000 concurrent votes over two processes on one PostgreSQL count exactly (${mode} bus)`, async (t) => {
    // The default cache TTL (a minute): without a bus carrying each process's votes to the
    // other, each would serve its own last count until it expired, far past the wait below.
    const env = await scaledEnv(t, { RATE_LIMIT_MAX: '100000', VOTE_RATE_LIMIT: '1000' }, mode)
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
    const pairs: { server: string, logoId: string, tok: string }[][] = []
    for (let u = 0; u < 500; u++) {
      const tok = await token(`user${u}`)
      const first = logos[u % 4]._id
      const second = u < 250 ? first : logos[(u + 1) % 4]._id
      expected.get(first)!.add(`user${u}`)
      expected.get(second)!.add(`user${u}`)
      pairs.push([{ server: a.http, logoId: first, tok }, { server: b.http, logoId: second, tok }])
    }
    t.equal(pairs.flat().length, 1000)
    // 100 votes in flight at a time (each user's two together): ten times what the two processes'
    // connection pools hold, yet a shared test machine still answers each within the pool's wait.
    const statuses: number[] = []
    let next = 0
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (next < pairs.length) {
        const pair = pairs[next++]
        statuses.push(...await Promise.all(pair.map(async ({ server, logoId, tok }) => {
          const res = await fetch(`${server}/logos/${logoId}/votes`, { method: 'POST', headers: bearer(tok) })
          await res.arrayBuffer()
          return res.status
        })))
      }
    }))
    t.same([...new Set(statuses)], [200], 'every vote answered 200')

    const db = new pg.Client({ connectionString: PG_URL })
    await db.connect()
    t.teardown(() => db.end())
    const served = async (logoId: string) => Promise.all([
      fetch(`${a.http}/logos/${logoId}`).then(async (r) => (await r.json() as { totalVotes: number }).totalVotes),
      fetch(`${b.http}/logos/${logoId}/votes`).then(async (r) => (await r.json() as { totalVotes: number }).totalVotes)
    ])
    for (const logo of logos) {
      const { rows: [{ n }] } = await db.query(`SELECT COUNT(DISTINCT user_id)::int AS n FROM ${env.DATABASE_SCHEMA}.votes WHERE logo_id = $1`, [logo._id])
      t.equal(n, expected.get(logo._id)!.size, 'distinct voters stored as expected')
      // Every vote is answered, so every change is committed and on the bus: both processes
      // converge on the store as soon as they have applied it (bounded, well under the TTL).
      let last: number[] = []
      const agreed = await eventually(async () => { last = await served(logo._id); return last.every((x) => x === n) }, 10_000, 50)
      t.ok(agreed, `both processes converged on the store's count (${n}; A, B serve ${last.join(', ')})`)
      t.equal(last[0], n, 'totalVotes equals distinct voters (process A)')
      t.equal(last[1], n, 'totalVotes equals distinct voters (process B)')
    }
  })
}
