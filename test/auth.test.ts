// Token verification is one rule, applied alike on REST, the /sync handshake and the in-band
// `auth` op: required exp (JWT_REQUIRE_EXP), issuer and audience (JWT_ISSUER, JWT_AUDIENCE).
import { createPublicKey } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createSigner } from 'fast-jwt'
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose'
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

// --- tokens from an identity provider: a JWKS served on loopback by the test itself ----------

interface Idp {
  url: string
  /** The keys the JWKS serves now (rotate by replacing them). */
  serve: (...keys: SigningKey[]) => void
  fetches: () => number
}

interface SigningKey { kid: string, alg: 'RS256' | 'ES256', privateKey: CryptoKey, jwk: JWK }

async function signingKey (kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { kid, alg, privateKey, jwk: { ...await exportJWK(publicKey), kid, alg, use: 'sig' } }
}

async function idp (t: TestLike): Promise<Idp> {
  let keys: SigningKey[] = []
  let fetches = 0
  const server = createServer((req, res) => {
    fetches++
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: keys.map((k) => k.jwk) }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/realms/gallery/protocol/openid-connect/certs`, serve: (...k) => { keys = k }, fetches: () => fetches }
}

const ISSUER = 'https://idp.test/realms/gallery'
/** A Keycloak-shaped access token: roles under realm_access.roles, among others. */
const kcToken = (key: SigningKey, sub: string, roles: string[], claims: Record<string, unknown> = {}) =>
  new SignJWT({ realm_access: { roles: ['offline_access', 'uma_authorization', ...roles] }, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setSubject(sub).setIssuer(ISSUER).setAudience('logo-sync').setIssuedAt().setExpirationTime('10m')
    .sign(key.privateKey)

t.test('JWT_JWKS_URL: RS256/ES256 tokens from an identity provider vote, subscribe and administer; rotated-out kids and alg confusion are refused', async (t) => {
  const provider = await idp(t)
  const [k1, k2, k3] = await Promise.all([signingKey('k1', 'RS256'), signingKey('k2', 'ES256'), signingKey('k3', 'RS256')])
  provider.serve(k1, k2)
  const server = await listen(t, {
    JWT_JWKS_URL: provider.url,
    JWT_JWKS_COOLDOWN_MS: '0',
    JWT_ROLE_CLAIM: 'realm_access.roles',
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: 'logo-sync'
  })
  const logo = await server.app.store.createLogo({ title: 'IdP', imageUrl: 'https://x.test/i.png' })
  const sub = 'f3c1a2b4-5d6e-4f70-8a9b-0c1d2e3f4a5b' // Keycloak subs are UUIDs
  const user = await kcToken(k1, sub, ['user'])

  const vote = await fetch(`${server.http}/logos/${logo._id}/votes`, { method: 'POST', headers: bearer(user) })
  t.equal(vote.status, 200, 'a user token signed with a known kid (RS256) votes')
  t.match(await vote.json(), { totalVotes: 1, voted: true })
  const client = await SyncClient.connect(t, server.ws, { token: user })
  t.match(client.frames[0], { type: 'welcome', user: { sub, role: 'user' } }, 'and is welcomed on /sync')
  const { state } = await client.subscribe(`users.${sub}.votes`)
  t.same(state?.data, [logo._id], 'and reads its own private channel')
  client.send({ op: 'auth', token: await kcToken(k2, sub, ['user']), id: 'refresh' })
  t.match(await client.waitFor((f) => f.id === 'refresh'), { type: 'authenticated', user: { sub, role: 'user' } }, 'ES256 in-band refresh')

  const admin = await kcToken(k2, 'admin-1', ['user', 'admin'])
  const created = await fetch(`${server.http}/logos`, { method: 'POST', headers: { ...bearer(admin), 'content-type': 'application/json' }, body: JSON.stringify({ title: 'By IdP admin', imageUrl: 'https://x.test/a.png' }) })
  t.equal(created.status, 201, 'an admin role in realm_access.roles administers (ES256)')
  t.same(await verdicts(t, server, await kcToken(k1, 'nobody', [])), refused, 'no user or admin role: refused')
  t.same(await verdicts(t, server, signed({ sub: 'alice', role: 'user', exp: inAnHour(), iss: ISSUER, aud: 'logo-sync' })), { rest: 401, handshake: '4001', inBand: 'unauthorized' }, 'the role claim is read from realm_access.roles for HS256 too')

  // Rotation: k1 leaves the set, k3 joins. A token naming the unknown k3 makes the server fetch
  // the set again, which drops k1.
  provider.serve(k3, k2)
  const before = provider.fetches()
  t.same(await verdicts(t, server, await kcToken(k3, sub, ['user'])), accepted, 'a new kid is fetched and accepted')
  t.ok(provider.fetches() > before, 'by fetching the JWKS again')
  t.same(await verdicts(t, server, await kcToken(k1, sub, ['user'])), refused, 'a rotated-out kid is refused')
  t.same(await verdicts(t, server, user), refused, 'even a token that was accepted before')

  // alg confusion: HS256 "signed" with the provider's public key, as PEM and as the JWK's JSON.
  const pem = createPublicKey({ key: k3.jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
  for (const [what, secret] of [['PEM', pem], ['JWK JSON', JSON.stringify(k3.jwk)]]) {
    const confused = await new SignJWT({ realm_access: { roles: ['admin'] } }).setProtectedHeader({ alg: 'HS256', kid: 'k3' })
      .setSubject('mallory').setIssuer(ISSUER).setAudience('logo-sync').setExpirationTime('10m').sign(new TextEncoder().encode(secret))
    t.same(await verdicts(t, server, confused), refused, `HS256 signed with the public key (${what}) is refused`)
  }
  const attacker = await signingKey('k3', 'RS256')
  t.same(await verdicts(t, server, await kcToken(attacker, 'mallory', ['admin'])), refused, 'a known kid signed by another key is refused')
  const embedded = await new SignJWT({ realm_access: { roles: ['admin'] } }).setProtectedHeader({ alg: 'RS256', kid: 'evil', jwk: attacker.jwk })
    .setSubject('mallory').setIssuer(ISSUER).setAudience('logo-sync').setExpirationTime('10m').sign(attacker.privateKey)
  t.same(await verdicts(t, server, embedded), refused, 'a key embedded in the header is not trusted')
  t.equal((await fetch(`${server.http}/logos`)).status, 200)
  t.equal(((await (await fetch(`${server.http}/logos`)).json()) as { items: unknown[] }).items.length, 2, 'nothing created by a refused token')
})

t.test('unknown kids cost the identity provider at most one fetch per JWT_JWKS_COOLDOWN_MS', async (t) => {
  const provider = await idp(t)
  const known = await signingKey('known', 'ES256')
  provider.serve(known)
  const server = await listen(t, { JWT_JWKS_URL: provider.url, JWT_ROLE_CLAIM: 'realm_access.roles', JWT_ISSUER: ISSUER, JWT_AUDIENCE: 'logo-sync' })
  t.equal((await fetch(`${server.http}/me/votes`, { headers: bearer(await kcToken(known, 'u1', ['user'])) })).status, 200)
  const after = provider.fetches()
  for (let i = 0; i < 20; i++) {
    const stranger = await signingKey(`made-up-${i}`, 'ES256')
    t.equal((await fetch(`${server.http}/me/votes`, { headers: bearer(await kcToken(stranger, 'u1', ['user'])) })).status, 401)
  }
  t.ok(provider.fetches() - after <= 1, `20 made-up kids, ${provider.fetches() - after} fetches`)
})
