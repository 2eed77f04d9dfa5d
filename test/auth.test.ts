// Token verification is one rule, applied alike on REST, the /sync handshake and the in-band
// `auth` op: required exp (JWT_REQUIRE_EXP), issuer and audience (JWT_ISSUER, JWT_AUDIENCE).
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { JWT_SECRET, bearer, listen, type TestLike } from './helper.js'
import { SyncClient } from './sync-client.js'

/** Signs exactly the claims given (no exp unless given), HS256 with the test secret. */
const signed = (claims: Record<string, unknown>) => createSigner({ key: JWT_SECRET, algorithm: 'HS256', noTimestamp: true })(claims)
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600

/** What each way in says about a token: REST status, handshake outcome, in-band reply. */
async function verdicts (t: TestLike, server: { http: string, ws: string }, tok: string) {
  const rest = (await fetch(`${server.http}/me/votes`, { headers: bearer(tok) })).status
  const hs = await SyncClient.open(t, server.ws, { token: tok })
  await hs.waitFor((f) => f.type === 'welcome' || f.type === 'error')
  const handshake = hs.frames[0].type === 'welcome' ? 'welcome' : `${(await hs.closedWithin()).code}`
  hs.terminate()
  const ib = await SyncClient.connect(t, server.ws)
  ib.send({ op: 'auth', token: tok, id: 1 })
  const reply = await ib.waitFor((f) => f.id === 1)
  ib.terminate()
  return { rest, handshake, inBand: reply.type === 'authenticated' ? 'authenticated' : String(reply.code) }
}

const accepted = { rest: 200, handshake: 'welcome', inBand: 'authenticated' }
const refused = { rest: 401, handshake: '4001', inBand: 'unauthorized' }

t.test('a token without exp is refused everywhere by default, accepted with JWT_REQUIRE_EXP=false', async (t) => {
  const strict = await listen(t)
  const forever = signed({ sub: 'alice', role: 'user' })
  t.same(await verdicts(t, strict, forever), refused, 'no exp: refused')
  t.same(await verdicts(t, strict, signed({ sub: 'alice', role: 'user', exp: inAnHour() })), accepted, 'with exp: accepted')
  const lax = await listen(t, { JWT_REQUIRE_EXP: 'false' })
  t.same(await verdicts(t, lax, forever), accepted, 'JWT_REQUIRE_EXP=false: accepted')
})

t.test('JWT_ISSUER and JWT_AUDIENCE are checked everywhere; tokens the server signs carry them', async (t) => {
  const server = await listen(t, { JWT_ISSUER: 'https://idp.test/, https://other.test/', JWT_AUDIENCE: 'logo-sync' })
  const claims = { sub: 'alice', role: 'user', exp: inAnHour() }
  t.same(await verdicts(t, server, signed({ ...claims, iss: 'https://idp.test/', aud: 'logo-sync' })), accepted, 'right issuer and audience')
  t.same(await verdicts(t, server, signed({ ...claims, iss: 'https://other.test/', aud: ['x', 'logo-sync'] })), accepted, 'the second issuer, an audience list that holds ours')
  t.same(await verdicts(t, server, signed({ ...claims, iss: 'https://evil.test/', aud: 'logo-sync' })), refused, 'another issuer')
  t.same(await verdicts(t, server, signed({ ...claims, aud: 'logo-sync' })), refused, 'no issuer')
  t.same(await verdicts(t, server, signed({ ...claims, iss: 'https://idp.test/', aud: 'another-api' })), refused, 'another audience')
  t.same(await verdicts(t, server, signed({ ...claims, iss: 'https://idp.test/' })), refused, 'no audience')
  const own = server.app.signToken({ sub: 'bob', role: 'admin' })
  t.same(await verdicts(t, server, own), accepted, 'a token the server signed itself passes its own checks')
})

t.test('a token whose exp no Date can hold gets one answer everywhere, and never half-applies in-band', async (t) => {
  const server = await listen(t)
  for (const exp of [8.64e12 + 1, 1e300, Number.MAX_VALUE]) {
    const huge = signed({ sub: 'mallory', role: 'admin', exp })
    t.same(await verdicts(t, server, huge), refused, `exp ${exp}: refused on REST, the handshake and in-band`)
  }
  // In-band: the refusal leaves the connection as it was (anonymous), so a private channel stays closed.
  const conn = await SyncClient.connect(t, server.ws)
  conn.send({ op: 'auth', token: signed({ sub: 'mallory', role: 'admin', exp: 1e300 }), id: 'huge' })
  t.match(await conn.waitFor((f) => f.id === 'huge'), { type: 'error', code: 'unauthorized' })
  conn.send({ op: 'subscribe', channel: 'users.mallory.votes', id: 'private' })
  t.match(await conn.waitFor((f) => f.id === 'private'), { type: 'error', code: 'unauthorized' }, 'still anonymous')
  t.same(await verdicts(t, server, signed({ sub: 'mallory', role: 'user', exp: 8.64e12 })), accepted, 'the latest exp a Date can hold is fine')
})
