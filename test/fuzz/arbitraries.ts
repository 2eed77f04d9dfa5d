// Generators of hostile input, for the fuzz properties (test/fuzz/properties.ts), which both the
// suite (test/fuzz.test.ts) and `npm run fuzz` run. A generated case is a description that does
// not depend on the server it will hit (logo ids, clock, keys are placeholders resolved when
// the case is sent), so a seed replays the same cases against any fresh server.
import fc from 'fast-check'

// --- text -----------------------------------------------------------------------------------

/** Characters no stored text may hold: C0/C1 controls, DEL, lone surrogates. */
export const forbiddenChar = fc.oneof(
  fc.integer({ min: 0, max: 0x1f }).filter((c) => c !== 0x09 && c !== 0x0a && c !== 0x0d).map((c) => String.fromCharCode(c)),
  fc.constantFrom('\u0000', '\u007f', '\u0085', '\u009b'),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c))
)

/** Any string, including every code unit (lone surrogates too) and long ones. */
export const anyString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\u202e', '\ufeff', '\ud83d\ude00', 'a\u0301', '__proto__', 'constructor', 'prototype', 'toString', 'null', 'undefined', '../../etc/passwd', '%00', '$' + '{7*7}', "'; DROP TABLE logos; --") },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('x', '\u00e9', '\ud83d\ude00', '\u0000'), fc.integer({ min: 150, max: 5000 })).map(([c, n]) => c.repeat(n)) }
)

/** A string with at least one forbidden character somewhere in it. */
export const textWithForbiddenChar = fc.tuple(fc.string({ maxLength: 20 }), forbiddenChar, fc.string({ maxLength: 20 }))
  .map(([a, bad, b]) => `${a}${bad}${b}`)

/** Object keys an attacker would try: prototype pollution and lookalikes. */
export const hostileKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'isAdmin', 'role', 'totalVotes', 'version', '_id', 'id', 'op', ''),
  fc.string({ unit: 'binary', maxLength: 12 })
)

/** Any JSON value, nested up to a depth, with hostile keys and strings. */
export const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null), fc.boolean(), fc.integer(), fc.double(), anyString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileKey, tie('value'), { maxKeys: 4 })
  )
})).value

/** JSON text a serialiser would never produce: prototype keys as own keys, deep nesting, duplicates. */
export const hostileJsonText = fc.oneof(
  fc.constantFrom(
    '{"__proto__":{"isAdmin":true},"title":"x","imageUrl":"https://x.test/a.png"}',
    '{"constructor":{"prototype":{"isAdmin":true}},"title":"x","imageUrl":"https://x.test/a.png"}',
    '{"title":"\\ud800","imageUrl":"https://x.test/a.png"}',
    '{"title":"x","imageUrl":"https://x.test/a.png"', '', 'null', '[]', '"x"', '1e999', '{"a":1e999}', '\ufeff{}', '{"deadline":"2030-01-01T00:00:00Z","__proto__":null}'
  ),
  fc.integer({ min: 50, max: 5000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc.integer({ min: 50, max: 3000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
  fc.string({ unit: 'binary', maxLength: 60 })
)

// --- tokens ---------------------------------------------------------------------------------

/**
 * A token to forge. Every one of them must be refused (REST 401, handshake close 4001, in-band
 * `unauthorized`). Times are offsets from now, resolved when the case is sent.
 */
export type TokenSpec =
  | { kind: 'none', alg: string, signature: string }
  | { kind: 'wrongSecret', secret: string }
  | { kind: 'otherHmac', alg: 'HS384' | 'HS512' }
  | { kind: 'tamperedPayload', claims: Record<string, unknown> }
  | { kind: 'tamperedHeader', header: Record<string, unknown> }
  | { kind: 'badClaims', claims: Record<string, unknown> }
  | { kind: 'expired', secondsAgo: number }
  | { kind: 'notYet', secondsAhead: number }
  | { kind: 'noExp' }
  | { kind: 'hugeExp', exp: number | string | boolean | null | object }
  | { kind: 'embeddedJwk' }
  | { kind: 'publicKeyAsSecret' }
  | { kind: 'garbage', text: string }

export const tokenSpec: fc.Arbitrary<TokenSpec> = fc.oneof(
  fc.record({ kind: fc.constant('none' as const), alg: fc.constantFrom('none', 'None', 'NONE', 'nOnE', ''), signature: fc.constantFrom('', 'x', 'AAAA') }),
  fc.record({ kind: fc.constant('wrongSecret' as const), secret: fc.string({ minLength: 1, maxLength: 40 }) }),
  fc.record({ kind: fc.constant('otherHmac' as const), alg: fc.constantFrom('HS384' as const, 'HS512' as const) }),
  fc.record({ kind: fc.constant('tamperedPayload' as const), claims: fc.record({ sub: fc.constantFrom('root', 'alice', 'mallory'), role: fc.constantFrom('admin', 'user') }) }),
  fc.record({ kind: fc.constant('tamperedHeader' as const), header: fc.oneof(fc.constant({ alg: 'HS512', typ: 'JWT' }), fc.constant({ alg: 'RS256' }), fc.dictionary(hostileKey, hostileJson, { maxKeys: 3 })) }),
  fc.record({
    kind: fc.constant('badClaims' as const),
    claims: fc.oneof(
      fc.record({ sub: fc.oneof(fc.constantFrom('a.b', '', 'x'.repeat(65), 'a\u0000b', 'a b', 'é'), fc.integer(), fc.constant(null)), role: fc.constant('user') }),
      fc.record({ sub: fc.constant('mallory'), role: fc.oneof(fc.constantFrom('superuser', 'Admin', 'ADMIN', 'root', '', 'admin '), fc.constant(['superuser']), fc.constant([]), fc.integer(), fc.constant(null)) }),
      fc.record({ role: fc.constant('admin') }),
      fc.record({ sub: fc.constant('mallory') })
    )
  }),
  fc.record({ kind: fc.constant('expired' as const), secondsAgo: fc.integer({ min: 1, max: 1_000_000_000 }) }),
  fc.record({ kind: fc.constant('notYet' as const), secondsAhead: fc.integer({ min: 5, max: 1_000_000_000 }) }),
  fc.constant({ kind: 'noExp' as const }),
  fc.record({
    kind: fc.constant('hugeExp' as const),
    exp: fc.oneof(
      fc.constantFrom(8.64e12 + 1, 1e15, 1e300, Number.MAX_VALUE, Number.MAX_SAFE_INTEGER, 2 ** 63),
      fc.double({ min: 8.64e12 + 1, max: 1e308, noNaN: true }),
      fc.constantFrom('9999999999', true, null, [], {}, -1)
    )
  }),
  fc.constant({ kind: 'embeddedJwk' as const }),
  fc.constant({ kind: 'publicKeyAsSecret' as const }),
  fc.record({
    kind: fc.constant('garbage' as const),
    text: fc.oneof(
      fc.string({ minLength: 1, maxLength: 200 }),
      fc.array(fc.base64String({ maxLength: 40 }), { minLength: 1, maxLength: 5 }).map((parts) => parts.join('.')),
      fc.constantFrom('a.b.c', '..', 'eyJhbGciOiJub25lIn0..', 'eyJ9.eyJ9.eyJ9', 'x'.repeat(8000))
    )
  })
)

/** How the token travels in an Authorization header. */
export const bearerForm = fc.constantFrom('Bearer {t}', 'bearer {t}', 'Bearer  {t}', 'Bearer {t} ', 'Basic {t}', '{t}', 'Bearer {t}.{t}')

// --- REST -----------------------------------------------------------------------------------

/** Placeholders resolved when a case is sent. */
export const LOGO = '\u0001logo\u0001'
export const ADMIN = '\u0001admin\u0001'
export const USER = '\u0001user\u0001'

export interface RestCase {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE' | 'HEAD' | 'OPTIONS'
  path: string
  query: string
  headers: Record<string, string>
  /** Raw body text (already serialised), or none. */
  body?: string
  /** Given: a token to forge in the Authorization header (with `bearerForm`). */
  token?: { spec: TokenSpec, form: string }
}

const validLogo = fc.record({
  title: fc.string({ minLength: 1, maxLength: 20 }).filter((s) => /^[^\p{Cc}\p{Cs}]+$/u.test(s)),
  imageUrl: fc.constantFrom('https://x.test/a.png', 'http://cdn.test/p/q.svg?v=1')
})

/** A logo body with exactly one thing wrong with it (so a 2xx would be a wrongful acceptance). */
const badLogoBody = fc.tuple(validLogo, fc.oneof(
  fc.record({ field: fc.constantFrom('title', 'description', 'author'), value: textWithForbiddenChar }).map(({ field, value }) => ({ [field]: value })),
  // Not null: a PATCH may clear description/author with null.
  fc.record({ field: fc.constantFrom('title', 'imageUrl', 'description', 'author'), value: hostileJson.filter((v) => typeof v !== 'string' && v !== null) }).map(({ field, value }) => ({ [field]: value })),
  fc.record({ key: hostileKey.filter((k) => !['title', 'imageUrl', 'description', 'author'].includes(k)), value: hostileJson }).map(({ key, value }) => ({ [key]: value })),
  fc.oneof(
    fc.constantFrom('javascript:alert(1)', 'ftp://x.test/a', 'https://', 'https:///a', 'https://x.test/a b', 'https://x.test/"', "https://x.test/'", 'https://x.test/<x>', '//x.test/a', 'data:image/png;base64,AA', 'https://x.test/\u202e', ''),
    textWithForbiddenChar.map((s) => `https://x.test/${s}`)
  ).map((imageUrl) => ({ imageUrl })),
  fc.constantFrom({ title: '' }, { title: 'x'.repeat(201) }, { description: 'x'.repeat(2001) }, { author: 'x'.repeat(201) }, { imageUrl: `https://x.test/${'a'.repeat(2050)}` })
)).map(([base, change]) => JSON.stringify({ ...base, ...change }))

const missingField = validLogo.chain((b) => fc.constantFrom('title', 'imageUrl').map((drop) => {
  const copy: Record<string, string> = { ...b }
  delete copy[drop]
  return JSON.stringify(copy)
}))

const badDeadline = fc.oneof(
  fc.oneof(anyString, fc.constantFrom('tomorrow', '2024-02-30T00:00:00Z', '2024-06-30T23:59:60Z', '0000-01-01T00:00:00Z', '+275760-09-13T00:00:01Z', '9999-12-31T24:00:00Z', '2030-01-01', '2030-01-01T00:00:00'))
    .filter((s) => !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) || Number.isNaN(Date.parse(s)) || s.startsWith('0000') || s.includes('T23:59:60') || s.includes('-02-30') || s.includes('T24:'))
    .map((deadline) => JSON.stringify({ deadline })),
  hostileJson.filter((v) => typeof v !== 'string' && v !== null).map((deadline) => JSON.stringify({ deadline })),
  fc.record({ key: hostileKey.filter((k) => k !== 'deadline'), value: hostileJson }).map(({ key, value }) => JSON.stringify({ deadline: null, [key]: value }))
)

/** An id that is never a real logo's (real ones are generated by the server). */
const foreignId = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }).map(encodeURIComponent),
  fc.constantFrom('..', '.', '%2e%2e', '__proto__', 'constructor', 'a.b', '%00', '%ZZ', 'x'.repeat(65), 'logos', '%E0%A4%A', '%F0%9F%98', '%ED%A0%80')
)

const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/octet-stream', '', 'application/json, text/plain')

/** A header value fetch can send (bytes 0x20-0xFF, no CR/LF). */
const headerValue = fc.string({ unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff })).map((c) => String.fromCharCode(c)), maxLength: 60 })
const extraHeaders = fc.dictionary(
  fc.constantFrom('if-none-match', 'x-request-id', 'x-forwarded-for', 'accept', 'origin', 'accept-encoding', 'x-http-method-override', 'forwarded', 'cookie'),
  headerValue,
  { maxKeys: 3 }
)

const badQuery = fc.oneof(
  fc.constant(''),
  fc.tuple(fc.constantFrom('__proto__', 'constructor', 'token', 'id', 'force', 'a', 'since', '__proto__[admin]', '%5F%5Fproto%5F%5F'), fc.string({ maxLength: 10 }))
    .map(([k, v]) => `?${k}=${encodeURIComponent(v)}`)
)

/**
 * A REST request that must change nothing: a write always carries at least one flaw (bad body,
 * bad token, bad id, unknown query parameter, wrong role), reads may be anything.
 */
export const restCase: fc.Arbitrary<RestCase> = fc.oneof(
  // Admin writes with a bad body.
  fc.record({ body: fc.oneof(badLogoBody, missingField, hostileJsonText), headers: extraHeaders, ct: contentType }).map(({ body, headers, ct }) => ({
    method: 'POST' as const, path: '/logos', query: '', headers: { ...headers, authorization: `Bearer ${ADMIN}`, ...(ct ? { 'content-type': ct } : {}) }, body
  })),
  fc.record({ body: fc.oneof(badLogoBody, hostileJsonText, fc.constant('{}')), existing: fc.boolean(), id: foreignId }).map(({ body, existing, id }) => ({
    method: 'PATCH' as const, path: `/logos/${existing ? LOGO : id}`, query: '', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body
  })),
  fc.record({ body: fc.oneof(badDeadline, hostileJsonText) }).map(({ body }) => ({
    method: 'PUT' as const, path: '/voting/deadline', query: '', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body
  })),
  // Writes with a valid body and a forged token.
  fc.record({ token: fc.record({ spec: tokenSpec, form: bearerForm }), route: fc.constantFrom('create', 'patch', 'delete', 'deadline', 'vote', 'unvote') }).map(({ token, route }) => {
    const body = { create: JSON.stringify({ title: 'Forged', imageUrl: 'https://x.test/f.png' }), patch: JSON.stringify({ title: 'Forged' }), deadline: JSON.stringify({ deadline: '2000-01-01T00:00:00Z' }) } as Record<string, string>
    const [method, path] = ({ create: ['POST', '/logos'], patch: ['PATCH', `/logos/${LOGO}`], delete: ['DELETE', `/logos/${LOGO}`], deadline: ['PUT', '/voting/deadline'], vote: ['POST', `/logos/${LOGO}/votes`], unvote: ['DELETE', `/logos/${LOGO}/votes`] } as const)[route as 'create']
    const headers: Record<string, string> = body[route] ? { 'content-type': 'application/json' } : {}
    return { method, path, query: '', headers, ...(body[route] ? { body: body[route] } : {}), token }
  }),
  // A user (not admin) on admin routes.
  fc.constantFrom(['POST', '/logos'], ['PATCH', `/logos/${LOGO}`], ['DELETE', `/logos/${LOGO}`], ['PUT', '/voting/deadline']).map(([method, path]) => ({
    method: method as RestCase['method'], path, query: '', headers: { authorization: `Bearer ${USER}`, 'content-type': 'application/json' }, body: path === '/voting/deadline' ? '{"deadline":null}' : '{"title":"User","imageUrl":"https://x.test/u.png"}'
  })),
  // Writes and reads on ids that do not exist or are not ids.
  fc.record({ id: foreignId, method: fc.constantFrom('GET', 'PATCH', 'DELETE', 'POST'), votes: fc.boolean(), query: badQuery }).map(({ id, method, votes, query }) => ({
    method: method as RestCase['method'],
    path: `/logos/${id}${votes ? '/votes' : ''}`,
    query,
    headers: { authorization: `Bearer ${method === 'POST' || votes ? USER : ADMIN}`, 'content-type': 'application/json' },
    body: method === 'PATCH' ? '{"title":"Renamed"}' : method === 'POST' && !votes ? '{}' : undefined
  })),
  // Unknown query parameters on writes that would otherwise succeed.
  fc.record({ q: badQuery.filter((q) => q !== ''), route: fc.constantFrom('vote', 'patch') }).map(({ q, route }) => ({
    method: route === 'vote' ? 'POST' as const : 'PATCH' as const,
    path: route === 'vote' ? `/logos/${LOGO}/votes` : `/logos/${LOGO}`,
    query: q,
    headers: { authorization: `Bearer ${route === 'vote' ? USER : ADMIN}`, 'content-type': 'application/json' },
    ...(route === 'patch' ? { body: '{"title":"Renamed"}' } : {})
  })),
  // Anything at all on any path: reads are allowed, nothing may be 5xx.
  fc.record({
    method: fc.constantFrom('GET', 'HEAD', 'OPTIONS', 'POST', 'DELETE'),
    path: fc.oneof(fc.constantFrom('/logos', '/voting', '/me/votes', '/healthz', '/readyz', '/metrics', '/docs/json', '/auth/dev-token', '/sync', '/_debug/cache', '/', `/logos/${LOGO}`, `/logos/${LOGO}/votes`), foreignId.map((p) => `/${p}`)),
    query: badQuery,
    headers: extraHeaders
  }).map(({ method, path, query, headers }) => ({ method: method as RestCase['method'], path, query, headers }))
)

// --- /sync ----------------------------------------------------------------------------------

const requestId = fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.string({ unit: 'binary', minLength: 65, maxLength: 80 }), fc.double(), fc.constant(null), fc.constant({}), fc.constant([]))

/** Channel names: real ones, private ones of others, and names crafted to slip through a parser. */
export const channelName = fc.oneof(
  fc.constantFrom('logos', 'voting.deadline', `logos.${LOGO}`, `logos.${LOGO}.votes`, 'users.alice.votes', 'users.root.votes', 'users.mallory.votes'),
  fc.constantFrom('', '.', 'logos.', '.logos', 'logos..votes', `logos.${LOGO}.votes.votes`, 'users..votes', 'users.alice.votes.', 'users.alice', 'LOGOS', 'logos.__proto__', 'logos.constructor.votes',
    'users.__proto__.votes', 'users.constructor.votes', 'voting.deadline.x', 'logos.a\u0000', 'logos.\ud800', 'users.alice\u0000.votes', 'users.alice%2e.votes', 'logos .x', 'x'.repeat(201), 'presence.logos'),
  fc.tuple(fc.constantFrom('logos.', 'users.', ''), anyString, fc.constantFrom('', '.votes')).map(([a, b, c]) => `${a}${b}${c}`)
)

const since = fc.oneof(fc.integer({ min: -5, max: 1_000_000 }), fc.constantFrom(0, -0, 2 ** 53, 1e300, 0.5, -1, null), fc.string({ maxLength: 5 }), fc.boolean(), fc.constant({}))

/** One frame for the socket: an op (valid shape or not), raw text, or bytes. */
export type FrameSpec =
  | { kind: 'json', value: unknown }
  | { kind: 'text', text: string }
  | { kind: 'binary', bytes: Uint8Array }
  | { kind: 'auth', token: TokenSpec, id?: unknown }

const extraFields = fc.dictionary(hostileKey.filter((k) => !['op', 'channel', 'since', 'id', 'token'].includes(k)), hostileJson, { maxKeys: 2 })

export const frameSpec: fc.Arbitrary<FrameSpec> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ channel: channelName, since: fc.option(since, { nil: undefined }), id: fc.option(requestId, { nil: undefined }), extra: fc.option(extraFields, { nil: undefined }) }).map(({ channel, since, id, extra }) => ({ kind: 'json' as const, value: { op: 'subscribe', channel, ...(since === undefined ? {} : { since }), ...(id === undefined ? {} : { id }), ...extra } })) },
  { weight: 2, arbitrary: fc.record({ channel: channelName, id: fc.option(requestId, { nil: undefined }) }).map(({ channel, id }) => ({ kind: 'json' as const, value: { op: 'unsubscribe', channel, ...(id === undefined ? {} : { id }) } })) },
  { weight: 2, arbitrary: fc.record({ token: tokenSpec, id: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }) }).map(({ token, id }) => ({ kind: 'auth' as const, token, ...(id === undefined ? {} : { id }) })) },
  { weight: 1, arbitrary: fc.record({ id: fc.option(requestId, { nil: undefined }) }).map(({ id }) => ({ kind: 'json' as const, value: { op: 'ping', ...(id === undefined ? {} : { id }) } })) },
  { weight: 2, arbitrary: fc.record({ op: fc.oneof(fc.constantFrom('subscribe', 'auth', 'ping', 'unsubscribe', 'SUBSCRIBE', 'publish', 'vote', '__proto__', ''), anyString, hostileJson), rest: fc.dictionary(hostileKey, hostileJson, { maxKeys: 4 }) }).map(({ op, rest }) => ({ kind: 'json' as const, value: { ...rest, op } })) },
  { weight: 2, arbitrary: hostileJson.map((value) => ({ kind: 'json' as const, value })) },
  { weight: 2, arbitrary: fc.oneof(hostileJsonText, fc.constantFrom('{"op":"subscribe","channel":"logos","__proto__":{"admin":true}}', '{"op":"auth","token":"x","constructor":{"prototype":{"role":"admin"}}}', '{"op":"ping","id":1,"id":2}')).map((text) => ({ kind: 'text' as const, text })) },
  { weight: 1, arbitrary: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(new Uint8Array([0xc3, 0x28])), fc.constant(new Uint8Array([0xed, 0xa0, 0x80]))).map((bytes) => ({ kind: 'binary' as const, bytes })) }
)

/** A /sync session: who connects, then what it sends. */
export interface SyncCase {
  as: 'anonymous' | 'mallory'
  frames: FrameSpec[]
  /** Sent as invalid UTF-8 text (ws closes 1007) instead of as binary. */
  badUtf8Text: boolean
}

export const syncCase: fc.Arbitrary<SyncCase> = fc.record({
  as: fc.constantFrom('anonymous' as const, 'mallory' as const),
  frames: fc.array(frameSpec, { minLength: 1, maxLength: 8 }),
  badUtf8Text: fc.boolean()
})

/** A forged token sent all three ways: REST, the /sync handshake, the in-band auth op. */
export const tokenCase = fc.record({ spec: tokenSpec, form: bearerForm })
