import t from 'tap'
import { bearer, build, token } from './helper.js'

const logoBody = { title: 'Aurora', imageUrl: 'https://example.com/a.png', description: 'Northern lights' }

async function setup (t: Parameters<typeof build>[0], env = {}) {
  const app = await build(t, env)
  const admin = await token('root', 'admin')
  const alice = await token('alice')
  const create = async (body: object = logoBody) => {
    const res = await app.inject({ method: 'POST', url: '/logos', headers: bearer(admin), payload: body })
    return res.json()
  }
  return { app, admin, alice, create }
}

t.test('logos CRUD as admin', async (t) => {
  const { app, admin, create } = await setup(t)
  const logo = await create()
  t.match(logo, { ...logoBody, totalVotes: 0, version: 1 })

  const list = await app.inject('/logos')
  t.equal(list.statusCode, 200)
  t.same(list.json().items.map((l: { _id: string }) => l._id), [logo._id])
  t.ok(list.headers.etag)

  const one = await app.inject(`/logos/${logo._id}`)
  t.equal(one.statusCode, 200)
  t.same(one.json(), logo)
  const etag = one.headers.etag as string
  t.equal((await app.inject({ url: `/logos/${logo._id}`, headers: { 'if-none-match': etag } })).statusCode, 304)

  const patched = await app.inject({ method: 'PATCH', url: `/logos/${logo._id}`, headers: bearer(admin), payload: { title: 'Borealis', author: null } })
  t.equal(patched.statusCode, 200)
  t.match(patched.json(), { title: 'Borealis', version: 2 })
  t.not(patched.headers.etag, etag)
  t.equal((await app.inject({ url: `/logos/${logo._id}`, headers: { 'if-none-match': etag } })).statusCode, 200, 'old ETag no longer matches')

  const del = await app.inject({ method: 'DELETE', url: `/logos/${logo._id}`, headers: bearer(admin) })
  t.equal(del.statusCode, 204)
  t.equal((await app.inject(`/logos/${logo._id}`)).statusCode, 404)
  t.equal((await app.inject({ method: 'DELETE', url: `/logos/${logo._id}`, headers: bearer(admin) })).statusCode, 404)
})

t.test('votes: idempotent cast, retract, counts, /me/votes', async (t) => {
  const { app, alice, create } = await setup(t)
  const logo = await create()
  const cast = () => app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(alice) })
  t.same((await cast()).json(), { logoId: logo._id, totalVotes: 1, voted: true, version: 2 })
  t.same((await cast()).json(), { logoId: logo._id, totalVotes: 1, voted: true, version: 2 }, 'a repeat never counts twice')
  t.same((await app.inject(`/logos/${logo._id}/votes`)).json(), { logoId: logo._id, totalVotes: 1, version: 2 })
  t.same((await app.inject({ url: '/me/votes', headers: bearer(alice) })).json(), { logoIds: [logo._id] })
  const retract = await app.inject({ method: 'DELETE', url: `/logos/${logo._id}/votes`, headers: bearer(alice) })
  t.same(retract.json(), { logoId: logo._id, totalVotes: 0, voted: false, version: 3 })
  t.same((await app.inject({ url: '/me/votes', headers: bearer(alice) })).json(), { logoIds: [] })
  t.equal((await app.inject({ method: 'POST', url: '/logos/nope/votes', headers: bearer(alice) })).statusCode, 404)
})

t.test('deadline: admin sets it, votes after it are 409 voting_closed and change nothing', async (t) => {
  const { app, admin, alice, create } = await setup(t)
  const logo = await create()
  const open = await app.inject('/voting')
  t.match(open.json(), { deadline: null, open: true })
  t.ok(Math.abs(Date.parse(open.json().serverTime) - Date.now()) < 5000)

  const past = await app.inject({ method: 'PUT', url: '/voting/deadline', headers: bearer(admin), payload: { deadline: '2020-01-01T00:00:00Z' } })
  t.equal(past.statusCode, 200)
  t.match(past.json(), { deadline: '2020-01-01T00:00:00.000Z', open: false })
  const refused = await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(alice) })
  t.equal(refused.statusCode, 409)
  t.match(refused.json(), { statusCode: 409, code: 'voting_closed' })
  t.equal((await app.inject(`/logos/${logo._id}`)).json().totalVotes, 0)

  const reopened = await app.inject({ method: 'PUT', url: '/voting/deadline', headers: bearer(admin), payload: { deadline: null } })
  t.match(reopened.json(), { deadline: null, open: true })
  t.equal((await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(alice) })).statusCode, 200)
})

t.test('bad input is refused cleanly and changes nothing', async (t) => {
  const { app, admin, create } = await setup(t)
  const logo = await create()
  const snapshot = async () => (await app.inject('/logos')).json()
  const before = await snapshot()
  const post = (payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/logos', headers: { ...bearer(admin), ...headers }, payload: payload as string })
  const cases: [string, () => Promise<{ statusCode: number, json: () => { code?: string, message: string } }>, number][] = [
    ['wrong type', () => post({ title: 42, imageUrl: 'https://x.test/a.png' }), 400],
    ['missing field', () => post({ title: 'No image' }), 400],
    ['unknown field', () => post({ ...logoBody, isAdmin: true }), 400],
    ['non-http imageUrl', () => post({ title: 'x', imageUrl: 'javascript:alert(1)' }), 400],
    ['empty title', () => post({ title: '', imageUrl: 'https://x.test/a.png' }), 400],
    ['malformed JSON', () => post('{"title": "x",', { 'content-type': 'application/json' }), 400],
    ['2 MB body', () => post(JSON.stringify({ ...logoBody, description: 'x'.repeat(2 * 1024 * 1024) }), { 'content-type': 'application/json' }), 413],
    ['array body', () => post([logoBody]), 400],
    ['empty patch', () => app.inject({ method: 'PATCH', url: `/logos/${logo._id}`, headers: bearer(admin), payload: {} }), 400],
    ['patch wrong type', () => app.inject({ method: 'PATCH', url: `/logos/${logo._id}`, headers: bearer(admin), payload: { title: ['x'] } }), 400],
    ['patch non-existent id', () => app.inject({ method: 'PATCH', url: '/logos/doesnotexist', headers: bearer(admin), payload: { title: 'x' } }), 404],
    ['id outside the safe alphabet', () => app.inject({ url: '/logos/a.b*c' }), 400],
    ['deadline not a date', () => app.inject({ method: 'PUT', url: '/voting/deadline', headers: bearer(admin), payload: { deadline: 'tomorrow' } }), 400],
    ['unknown query parameter', () => app.inject({ url: '/logos?foo=1' }), 400],
    ['unknown query parameter on a write', () => app.inject({ method: 'PATCH', url: `/logos/${logo._id}?force=1`, headers: bearer(admin), payload: { title: 'x' } }), 400],
    ['deadline a leap second', () => app.inject({ method: 'PUT', url: '/voting/deadline', headers: bearer(admin), payload: { deadline: '2024-06-30T23:59:60Z' } }), 400],
    ['deadline in year 0', () => app.inject({ method: 'PUT', url: '/voting/deadline', headers: bearer(admin), payload: { deadline: '0000-01-01T00:00:00Z' } }), 400],
    ['deadline missing', () => app.inject({ method: 'PUT', url: '/voting/deadline', headers: bearer(admin), payload: {} }), 400]
  ]
  for (const [name, run, status] of cases) {
    const res = await run()
    t.equal(res.statusCode, status, name)
    const body = res.json()
    t.type(body.message, 'string', `${name}: plain-words message`)
    t.ok(body.code, `${name}: has a code`)
  }
  t.equal((await post({ ...logoBody, isAdmin: true })).json().message, 'body: unknown field "isAdmin"', 'the unknown field is named')
  t.equal((await post({ title: 42, imageUrl: 'https://x.test/a.png' })).json().message, 'body.title must be string', 'the bad field is named')
  t.same(await snapshot(), before, 'nothing stored changed')
  t.match((await app.inject('/voting')).json(), { deadline: null })
})

t.test('auth: forged, expired, alg none, wrong role, missing token', async (t) => {
  const { app, alice, create } = await setup(t)
  const logo = await create()
  const forged = await token('root', 'admin', { secret: 'another-secret-another-secret-xx' })
  const expired = await token('root', 'admin', { expiresIn: 1 })
  await new Promise((resolve) => setTimeout(resolve, 20))
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'root', role: 'admin', exp: Math.floor(Date.now() / 1000) + 600 })}.`
  const badRole = await token('mallory', 'superuser' as 'admin')
  const badSub = await token('a.b', 'admin')
  const create2 = (headers: Record<string, string>) => app.inject({ method: 'POST', url: '/logos', headers, payload: logoBody })
  for (const [name, headers, status] of [
    ['no token', {}, 401],
    ['not a bearer', { authorization: 'Basic Zm9vOmJhcg==' }, 401],
    ['garbage', { authorization: 'Bearer not.a.jwt' }, 401],
    ['forged signature', bearer(forged), 401],
    ['expired', bearer(expired), 401],
    ['alg none', bearer(none), 401],
    ['unknown role claim', bearer(badRole), 401],
    ['sub outside the safe alphabet', bearer(badSub), 401],
    ['user token on admin route', bearer(alice), 403]
  ] as const) {
    const res = await create2(headers)
    t.equal(res.statusCode, status, name)
    t.equal(res.json().code, status === 401 ? 'unauthorized' : 'forbidden', `${name}: code`)
  }
  t.equal((await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(expired) })).statusCode, 401)
  t.equal((await app.inject({ method: 'DELETE', url: `/logos/${logo._id}`, headers: bearer(alice) })).statusCode, 403)
  t.equal((await app.inject({ method: 'PUT', url: '/voting/deadline', headers: bearer(alice), payload: { deadline: null } })).statusCode, 403)
  t.equal((await app.inject('/me/votes')).statusCode, 401)
  t.equal((await app.inject('/logos')).json().items.length, 1, 'nothing created')
})

t.test('dev tokens only without JWT_SECRET outside production', async (t) => {
  const withSecret = await build(t)
  t.equal((await withSecret.inject({ method: 'POST', url: '/auth/dev-token', payload: { sub: 'alice' } })).statusCode, 404)
  t.same((await withSecret.inject('/auth/options')).json(), { devTokens: false }, 'the page is told not to offer the demo sign-in')

  const dev = await build(t, { JWT_SECRET: undefined })
  t.same((await dev.inject('/auth/options')).json(), { devTokens: true })
  const res = await dev.inject({ method: 'POST', url: '/auth/dev-token', payload: { sub: 'alice', role: 'admin' } })
  t.equal(res.statusCode, 200)
  const created = await dev.inject({ method: 'POST', url: '/logos', headers: bearer(res.json().token), payload: logoBody })
  t.equal(created.statusCode, 201, 'dev token works on the server that minted it')
  t.equal((await dev.inject({ method: 'POST', url: '/auth/dev-token', payload: { sub: 'a.b' } })).statusCode, 400)
  t.equal((await dev.inject({ method: 'POST', url: '/auth/dev-token', payload: { sub: 'a', role: 'root' } })).statusCode, 400)
})

t.test('rate limits: per IP globally, tighter per user on votes, 429 with Retry-After', async (t) => {
  const { app, alice, create } = await setup(t, { RATE_LIMIT_MAX: '20', VOTE_RATE_LIMIT: '3' })
  const logo = await create()
  const bob = await token('bob')
  const vote = (tok: string) => app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(tok), remoteAddress: `10.0.0.${tok === bob ? 2 : 1}` })
  for (let i = 0; i < 3; i++) t.equal((await vote(alice)).statusCode, 200)
  const limited = await vote(alice)
  t.equal(limited.statusCode, 429)
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After set')
  t.equal(limited.json().code, 'rate_limited')
  t.equal((await vote(bob)).statusCode, 200, 'another user is not limited by alice')

  let last = 0
  for (let i = 0; i < 25; i++) last = (await app.inject({ url: '/logos', remoteAddress: '10.9.9.9' })).statusCode
  t.equal(last, 429, 'per-IP limit')
  t.equal((await app.inject({ url: '/logos', remoteAddress: '10.9.9.8' })).statusCode, 200, 'other IPs unaffected')
  t.equal((await app.inject({ url: '/healthz', remoteAddress: '10.9.9.9' })).statusCode, 200, 'health checks are never limited')
})

t.test('CORS from CORS_ORIGINS', async (t) => {
  const app = await build(t, { CORS_ORIGINS: 'https://gallery.example' })
  const ok = await app.inject({ method: 'OPTIONS', url: '/logos', headers: { origin: 'https://gallery.example', 'access-control-request-method': 'POST' } })
  t.equal(ok.headers['access-control-allow-origin'], 'https://gallery.example')
  const other = await app.inject({ url: '/logos', headers: { origin: 'https://evil.example' } })
  t.notOk(other.headers['access-control-allow-origin'])
})

t.test('health and readiness', async (t) => {
  const app = await build(t)
  t.same((await app.inject('/healthz')).json(), { status: 'ok' })
  t.same((await app.inject('/readyz')).json(), { status: 'ok', checks: { store: 'ok', redis: 'absent' } })
  await app.store.close()
  const down = await app.inject('/readyz')
  t.equal(down.statusCode, 503)
  t.same(down.json().checks, { store: 'down', redis: 'absent' })
  const read = await app.inject('/logos')
  t.equal(read.statusCode, 503, 'a store that is down is a 503, not a 500')
})

t.test('unknown route is a JSON 404', async (t) => {
  const app = await build(t)
  const res = await app.inject('/nope?token=abc')
  t.equal(res.statusCode, 404)
  t.match(res.json(), { code: 'not_found', message: 'Route GET /nope not found' })
})

t.test('with Redis the vote limit holds across replicas', async (t) => {
  const { scaledEnv } = await import('./helper.js')
  const env = await scaledEnv(t, { VOTE_RATE_LIMIT: '3', RATE_LIMIT_MAX: '1000' })
  const [a, b] = [await build(t, env), await build(t, env)]
  const admin = await token('root', 'admin')
  const alice = await token('alice')
  const logo = (await a.inject({ method: 'POST', url: '/logos', headers: bearer(admin), payload: logoBody })).json()
  const statuses: number[] = []
  for (const app of [a, b, a, b]) statuses.push((await app.inject({ method: 'POST', url: `/logos/${logo._id}/votes`, headers: bearer(alice) })).statusCode)
  t.same(statuses, [200, 200, 200, 429], 'the fourth vote in a minute is refused, whichever replica takes it')
})
