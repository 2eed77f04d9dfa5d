// The fuzz properties, run by the suite (test/fuzz.test.ts, a few thousand cases per store) and
// by `npm run fuzz` (as many as asked). Each sends generated hostile input to the real app over
// real sockets and checks: no 5xx, nothing wrongly accepted, stored state unchanged, the process
// still answers, and memory back near where it started.
import { createHmac, generateKeyPairSync, createSign, type KeyObject } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import fc from 'fast-check'
import WebSocket from 'ws'
import { JWT_SECRET, listen, pgSchema, PG_URL, token, type TestLike } from '../helper.js'
import { CHANNELS, parseChannel } from '@logo-sync/client/protocol'
import { ADMIN, LOGO, USER, restCase, syncCase, tokenCase, type FrameSpec, type RestCase, type SyncCase, type TokenSpec } from './arbitraries.js'

type App = Awaited<ReturnType<typeof listen>>['app']

export interface FuzzTarget {
  store: 'sqlite' | 'postgres'
  app: App
  http: string
  ws: string
  logoIds: string[]
  tokens: { admin: string, user: string, mallory: string }
  /** A public key the server does not trust for HS256 (alg confusion), and a private key of an attacker. */
  publicKeyPem: string
  attacker: { privateKey: KeyObject, jwk: object }
}

/** The app as the suite runs it, with limits raised so generated input meets validation, not 429s. */
export const FUZZ_ENV = {
  RATE_LIMIT_MAX: '100000000',
  VOTE_RATE_LIMIT: '100000000',
  SYNC_RATE_LIMIT: '10000',
  SYNC_MAX_CONNECTIONS_PER_IP: '10000',
  LOG_LEVEL: 'silent'
}

export async function startTarget (t: TestLike, store: 'sqlite' | 'postgres', env: Record<string, string> = {}): Promise<FuzzTarget> {
  const storeEnv = store === 'postgres' ? { DATABASE_URL: PG_URL, DATABASE_SCHEMA: await pgSchema(t) } : {}
  const { app, http, ws } = await listen(t, { ...FUZZ_ENV, ...storeEnv, ...env })
  const tokens = { admin: await token('root', 'admin'), user: await token('alice'), mallory: await token('mallory') }
  const logoIds: string[] = []
  for (const title of ['Aurora', 'Borealis', 'Cirrus']) {
    const res = await app.inject({ method: 'POST', url: '/logos', headers: { authorization: `Bearer ${tokens.admin}` }, payload: { title, imageUrl: `https://x.test/${title}.png` } })
    logoIds.push(res.json()._id)
  }
  await app.inject({ method: 'POST', url: `/logos/${logoIds[0]}/votes`, headers: { authorization: `Bearer ${tokens.user}` } })
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    store,
    app,
    http,
    ws,
    logoIds,
    tokens,
    publicKeyPem: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    attacker: { privateKey: attacker.privateKey, jwk: attacker.publicKey.export({ format: 'jwk' }) }
  }
}

// --- forging tokens ---------------------------------------------------------------------------

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
const hmac = (alg: string, key: string | Buffer, input: string) => createHmac(`sha${alg.slice(2)}`, key).update(input).digest('base64url')
const now = () => Math.floor(Date.now() / 1000)

function hs (alg: string, key: string | Buffer, payload: object, header: object = { alg, typ: 'JWT' }): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${hmac(alg, key, input)}`
}

/** Turns a token description into a token string, against this target's keys. */
export function forge (target: FuzzTarget, spec: TokenSpec): string {
  const valid = { sub: 'mallory', role: 'admin', exp: now() + 3600 }
  switch (spec.kind) {
    case 'none': return `${b64({ alg: spec.alg, typ: 'JWT' })}.${b64(valid)}.${spec.signature}`
    case 'wrongSecret': return hs('HS256', `${spec.secret}-not-the-secret`, valid)
    case 'otherHmac': return hs(spec.alg, JWT_SECRET, valid)
    case 'tamperedPayload': {
      const [header, , signature] = hs('HS256', JWT_SECRET, { sub: 'nobody', role: 'user', exp: now() + 3600 }).split('.')
      return `${header}.${b64({ ...spec.claims, exp: now() + 3600 })}.${signature}`
    }
    case 'tamperedHeader': {
      const [, payload, signature] = hs('HS256', JWT_SECRET, valid).split('.')
      return `${b64(spec.header)}.${payload}.${signature}`
    }
    case 'badClaims': return hs('HS256', JWT_SECRET, { ...spec.claims, exp: now() + 3600 })
    case 'expired': return hs('HS256', JWT_SECRET, { ...valid, exp: now() - spec.secondsAgo })
    case 'notYet': return hs('HS256', JWT_SECRET, { ...valid, nbf: now() + spec.secondsAhead })
    case 'noExp': return hs('HS256', JWT_SECRET, { sub: 'mallory', role: 'admin' })
    case 'hugeExp': return hs('HS256', JWT_SECRET, { sub: 'mallory', role: 'admin', exp: spec.exp })
    case 'embeddedJwk': {
      const input = `${b64({ alg: 'RS256', typ: 'JWT', jwk: target.attacker.jwk, kid: 'attacker' })}.${b64(valid)}`
      return `${input}.${createSign('RSA-SHA256').update(input).sign(target.attacker.privateKey).toString('base64url')}`
    }
    case 'publicKeyAsSecret': return hs('HS256', target.publicKeyPem, valid)
    case 'garbage': return spec.text
  }
}

// --- invariants ---------------------------------------------------------------------------------

/** What the stores hold, as one comparable string. */
export async function fingerprint (target: FuzzTarget): Promise<string> {
  const { store } = target.app
  const [logos, deadline, ...votes] = await Promise.all([
    store.listLogos(), store.getDeadline(),
    ...['alice', 'root', 'mallory', 'nobody'].map((sub) => store.userVotes(sub))
  ])
  return JSON.stringify({ logos, deadline, votes })
}

const HEADER_SAFE = /^[\t\x20-\x7e\x80-\xff]*$/

function fill (target: FuzzTarget, text: string): string {
  return text.split(LOGO).join(target.logoIds[0]).split(ADMIN).join(target.tokens.admin).split(USER).join(target.tokens.user)
}

/** Sends one REST case. Throws when an invariant breaks. */
export async function sendRest (target: FuzzTarget, c: RestCase): Promise<number> {
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(c.headers)) headers[k] = fill(target, v)
  if (c.token) headers.authorization = c.token.form.split('{t}').join(forge(target, c.token.spec))
  for (const v of Object.values(headers)) if (!HEADER_SAFE.test(v)) return 0 // fetch cannot send it; nothing to check
  const url = `${target.http}${fill(target, c.path)}${c.query}`
  const res = await fetch(url, { method: c.method, headers, ...(c.body === undefined || c.method === 'GET' || c.method === 'HEAD' ? {} : { body: c.body }), redirect: 'manual' })
  const text = await res.text()
  // The demo page answers 503 until `npm run build` has made it: a state of the checkout, not a fault.
  const pageNotBuilt = res.status === 503 && (c.method === 'HEAD' ? res.headers.get('content-type')?.includes('text/html') : text.includes('demo page is not built yet'))
  if (res.status >= 500 && !pageNotBuilt) throw new Error(`${c.method} ${url} answered ${res.status}: ${text.slice(0, 300)}`)
  const write = !['GET', 'HEAD', 'OPTIONS'].includes(c.method)
  if (write && res.status < 400) throw new Error(`${c.method} ${url} was accepted (${res.status}): ${text.slice(0, 300)}`)
  if (res.status >= 400 && c.method !== 'HEAD' && res.headers.get('content-type')?.includes('json')) {
    const body = JSON.parse(text) as { statusCode?: unknown, code?: unknown, message?: unknown }
    if (body.statusCode !== res.status || typeof body.code !== 'string' || typeof body.message !== 'string') throw new Error(`error body not in the documented shape: ${text.slice(0, 300)}`)
  }
  return res.status
}

interface Session {
  ws: WebSocket
  frames: Record<string, unknown>[]
  closed: Promise<number>
  waitFor: (match: (f: Record<string, unknown>) => boolean, timeoutMs: number) => Promise<Record<string, unknown> | null>
}

function openSession (url: string, headers: Record<string, string> = {}): Promise<Session> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    const frames: Record<string, unknown>[] = []
    const waiters = new Set<() => void>()
    let closeCode: number | null = null
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => { closeCode = code; resolve(code); for (const w of [...waiters]) w() }))
    ws.on('error', () => {})
    ws.on('message', (data, isBinary) => {
      if (isBinary) throw new Error('the server sent a binary frame')
      const frame = JSON.parse(data.toString()) as Record<string, unknown>
      if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) throw new Error(`not a frame object: ${data.toString()}`)
      frames.push(frame)
      for (const w of [...waiters]) w()
    })
    const waitFor: Session['waitFor'] = (match, timeoutMs) => new Promise((resolve) => {
      const check = () => {
        const hit = frames.find(match)
        if (hit || closeCode !== null) { clearTimeout(timer); waiters.delete(check); resolve(hit ?? null) }
      }
      const timer = setTimeout(() => { waiters.delete(check); resolve(null) }, timeoutMs)
      waiters.add(check)
      check()
    })
    ws.once('open', () => resolve({ ws, frames, closed, waitFor }))
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
  })
}

/** SYNC_MAX_FRAME_BYTES's default, which the fuzz target keeps. */
const MAX_FRAME_BYTES = 16 * 1024
/** A channel anyone may read, by the protocol vocabulary (the contract both sides share). */
const isPublicChannel = (name: string) => { const parsed = parseChannel(name); return parsed !== null && CHANNELS[parsed.kind].read === 'public' }
const ERROR_CODES = new Set(['bad_request', 'unknown_channel', 'forbidden', 'unauthorized', 'rate_limited', 'too_many_subscriptions'])
/** Close codes a hostile client may earn: bad UTF-8, policy (garbage), too big, rate limit. */
const EARNED_CLOSES = new Set([1007, 1008, 1009, 4008])

function frameText (target: FuzzTarget, f: FrameSpec): string | Buffer {
  switch (f.kind) {
    case 'json': return fill(target, JSON.stringify(f.value) ?? 'null')
    case 'text': return f.text
    case 'binary': return Buffer.from(f.bytes)
    case 'auth': return JSON.stringify({ op: 'auth', token: forge(target, f.token), ...(f.id === undefined ? {} : { id: f.id }) })
  }
}

/** Runs one /sync session. Throws when an invariant breaks. */
export async function sendSync (target: FuzzTarget, c: SyncCase): Promise<void> {
  const own = c.as === 'mallory' ? 'users.mallory.votes' : null
  const s = await openSession(target.ws, c.as === 'mallory' ? { authorization: `Bearer ${target.tokens.mallory}` } : {})
  try {
    const welcome = await s.waitFor((f) => f.type === 'welcome', 5000)
    const expected = c.as === 'mallory' ? { sub: 'mallory', role: 'user' } : null
    if (JSON.stringify(welcome?.user) !== JSON.stringify(expected)) throw new Error(`welcome user ${JSON.stringify(welcome?.user)}, expected ${JSON.stringify(expected)}`)
    for (const f of c.frames) {
      if (s.ws.readyState !== WebSocket.OPEN) break
      const data = frameText(target, f)
      if (typeof data !== 'string' && c.badUtf8Text) s.ws.send(data, { binary: false })
      else s.ws.send(data, { binary: typeof data !== 'string' })
    }
    const pong = s.ws.readyState === WebSocket.OPEN ? (s.ws.send(JSON.stringify({ op: 'ping', id: 'final-ping' })), await s.waitFor((f) => f.type === 'pong' && f.id === 'final-ping', 5000)) : null
    if (!pong) {
      const code = await Promise.race([s.closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5000))])
      if (!EARNED_CLOSES.has(code)) throw new Error(`no pong, and the connection ended with ${code}`)
    }
    for (const f of s.frames) {
      if (f.type === 'authenticated') throw new Error(`a forged token was accepted in-band: ${JSON.stringify(f)}`)
      if (f.type === 'error' && !ERROR_CODES.has(String(f.code))) throw new Error(`unknown error code: ${JSON.stringify(f)}`)
      const channel = typeof f.channel === 'string' ? f.channel : null
      if (channel && f.type !== 'error' && f.type !== 'unsubscribed' && !isPublicChannel(channel) && channel !== own) throw new Error(`data of a channel it may not read: ${JSON.stringify(f).slice(0, 300)}`)
    }
  } finally {
    s.ws.terminate()
    await s.closed
  }
}

/** Sends one forged token three ways; each must refuse it. */
export async function sendToken (target: FuzzTarget, c: { spec: TokenSpec, form: string }): Promise<void> {
  const forged = forge(target, c.spec)
  const header = c.form.split('{t}').join(forged)
  if (HEADER_SAFE.test(header)) {
    const res = await fetch(`${target.http}/me/votes`, { headers: { authorization: header } })
    // 431: the header is over Node's limit, refused before it is read.
    if (res.status !== 401 && res.status !== 431) throw new Error(`REST answered ${res.status} to a forged token`)
  }
  if (HEADER_SAFE.test(forged) && forged.length > 0) {
    const hs = await openSession(`${target.ws}?token=${encodeURIComponent(forged)}`).catch((err: Error) => err)
    if (hs instanceof Error) {
      // Only an over-long token may be refused at the upgrade: 400 (over the query schema's
      // 8192 characters) or 414/431 (over Node's header limit).
      if (!/upgrade refused: (400|414|431)/.test(hs.message) || forged.length <= 8192) throw hs
    } else {
      const code = await Promise.race([hs.closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5000))])
      hs.ws.terminate()
      if (hs.frames.some((f) => f.type === 'welcome')) throw new Error('the handshake welcomed a forged token')
      if (code !== 4001) throw new Error(`the handshake ended with ${code}, not 4001`)
    }
  }
  const ib = await openSession(target.ws)
  try {
    await ib.waitFor((f) => f.type === 'welcome', 5000)
    const frame = JSON.stringify({ op: 'auth', token: forged, id: 'forged' })
    ib.ws.send(frame)
    if (Buffer.byteLength(frame) > MAX_FRAME_BYTES) {
      const code = await Promise.race([ib.closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5000))])
      if (code !== 1009) throw new Error(`an oversized auth frame ended with ${code}, not 1009`)
      return
    }
    const reply = await ib.waitFor((f) => f.id === 'forged', 5000)
    const valid = forged.length >= 1 && forged.length <= 8192
    if (valid ? reply?.type !== 'error' || reply.code !== 'unauthorized' : reply?.type !== 'error' || reply.code !== 'bad_request') {
      throw new Error(`in-band auth answered ${JSON.stringify(reply)}`)
    }
  } finally {
    ib.ws.terminate()
    await ib.closed
  }
}

// --- running ------------------------------------------------------------------------------------

let collect: (() => void) | undefined
/** A full garbage collection, so heap figures compare what is live, not what awaits collection. */
function gc (): void {
  if (!collect) {
    setFlagsFromString('--expose-gc')
    collect = runInNewContext('gc') as () => void
  }
  collect()
}

export function heapUsed (): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

export type PropertyName = 'rest' | 'tokens' | 'sync'
export const PROPERTY_NAMES: PropertyName[] = ['rest', 'tokens', 'sync']

/** Each property: a generated case, sent, then the store compared with how it was before. */
interface RunOptions { seed: number, numRuns: number, path?: string }

async function check<T> (target: FuzzTarget, arbitrary: fc.Arbitrary<T>, send: (target: FuzzTarget, c: T) => Promise<unknown>, opts: RunOptions): Promise<void> {
  const before = await fingerprint(target)
  await fc.assert(fc.asyncProperty(arbitrary, async (c) => {
    await send(target, c)
    const after = await fingerprint(target)
    if (after !== before) throw new Error(`stored state changed:\nbefore ${before}\nafter  ${after}`)
  }), opts)
}

function property (target: FuzzTarget, name: PropertyName, opts: RunOptions): Promise<void> {
  switch (name) {
    case 'rest': return check(target, restCase, sendRest, opts)
    case 'tokens': return check(target, tokenCase, sendToken, opts)
    case 'sync': return check(target, syncCase, sendSync, opts)
  }
}

export interface FuzzResult {
  name: PropertyName
  runs: number
  ms: number
  heapBeforeMb: number
  heapAfterMb: number
}

/** How much the heap may grow over a property's run and still count as back near its start. */
export const HEAP_SLACK_MB = 24

/**
 * Runs one property for `runs` cases from `seed` (fast-check's replay `path`, when given, reruns
 * exactly one failing case). Throws fast-check's report on a failure; checks afterwards that the
 * app still answers and the heap is back near its start.
 */
export async function runProperty (target: FuzzTarget, name: PropertyName, opts: { seed: number, runs: number, path?: string }): Promise<FuzzResult> {
  const heapBefore = heapUsed()
  const started = Date.now()
  try {
    await property(target, name, { seed: opts.seed, numRuns: opts.runs, ...(opts.path ? { path: opts.path } : {}) })
  } catch (err) {
    // fast-check's report (seed, path, shrunk case) with what the case broke.
    const cause = (err as Error).cause
    const report = (err as Error).message.split('\n').map((line) => line.length > 2000 ? `${line.slice(0, 2000)}… (${line.length} characters)` : line).join('\n')
    throw new Error(`${report}${cause ? `\nWhat broke: ${cause instanceof Error ? cause.message : String(cause)}` : ''}`)
  }
  const ms = Date.now() - started
  const health = await fetch(`${target.http}/healthz`)
  if (health.status !== 200) throw new Error(`after ${name}: /healthz answered ${health.status}`)
  // Connections the property closed may still be winding down on the server: wait for them.
  for (let i = 0; i < 100 && target.app.syncStats.connections > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const heapAfter = heapUsed()
  const result = { name, runs: opts.runs, ms, heapBeforeMb: Math.round(heapBefore / 1e5) / 10, heapAfterMb: Math.round(heapAfter / 1e5) / 10 }
  if (heapAfter - heapBefore > HEAP_SLACK_MB * 1e6) throw new Error(`after ${name}: heap grew from ${result.heapBeforeMb} MB to ${result.heapAfterMb} MB`)
  return result
}
