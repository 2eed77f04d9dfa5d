// The one wire vocabulary (@logo-sync/client/protocol): channel names, parsing, access and the
// whole/versioned rule; close codes and what they tell a client, and that the SDK acts on it;
// that the docs cover every code.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'tap'
import { WebSocket } from 'ws'
import { LogoSyncClient, type SyncError } from '@logo-sync/client'
import {
  CHANNELS, CLOSE_RULES, CloseCode, channelForDeadline, channelForLogo, channelForLogoVotes, channelForLogos, channelForUserVotes, channelForPresence,
  channelName, closeRule, isWholeChannel, parseChannel, readAccess, type Channel
} from '@logo-sync/client/protocol'
import { fakeSyncServer, until } from './fixtures/fake-sync-server.js'
import { ROOT, type TestLike } from './helper.js'

test('channel names: every builder parses back to its kind and ids; anything else is no channel', async (t) => {
  t.same(parseChannel(channelForLogos), { kind: 'logos', name: 'logos' })
  t.same(parseChannel(channelForDeadline), { kind: 'deadline', name: 'voting.deadline' })
  t.same(parseChannel(channelForLogo('a-1')), { kind: 'logo', name: 'logos.a-1', logoId: 'a-1' })
  t.same(parseChannel(channelForLogoVotes('a_1')), { kind: 'logoVotes', name: 'logos.a_1.votes', logoId: 'a_1' })
  t.same(parseChannel(channelForUserVotes('ann@x+1')), { kind: 'userVotes', name: 'users.ann@x+1.votes', sub: 'ann@x+1' })
  t.same(parseChannel(channelForPresence), { kind: 'presence', name: 'presence.logos' })
  t.equal(channelName('logo', { logoId: 'z' }), 'logos.z')
  for (const kind of Object.keys(CHANNELS) as (keyof typeof CHANNELS)[]) {
    const name = CHANNELS[kind].pattern.replace(/\{\w+\}/g, 'x')
    t.equal(parseChannel(name)?.kind, kind, `the pattern of ${kind} parses as ${kind}`)
  }
  for (const name of ['', 'logos.', 'logos..votes', 'logos.a.b', 'logos.a.votes.x', 'logos.a b', `logos.${'a'.repeat(65)}`, 'users.ann.likes', 'users..votes', 'voting', 'voting.deadline.x', 'presence', 'presence.logos.x', 'presence.users']) {
    t.equal(parseChannel(name), null, `${JSON.stringify(name)} is no channel`)
  }
})

test('whole or versioned, and who may read', async (t) => {
  const kinds = (whole: boolean) => Object.keys(CHANNELS).filter((k) => isWholeChannel({ kind: k }) === whole).sort()
  t.same(kinds(true), ['logos', 'presence', 'userVotes'], 'the list, private votes and the presence count are sent whole')
  t.same(kinds(false), ['deadline', 'logo', 'logoVotes'], 'single entities are versioned')
  t.equal(isWholeChannel({ kind: 'other' }), false, 'an unknown kind is not whole')

  const ann = parseChannel('users.ann.votes') as Channel
  t.equal(readAccess(ann, null), 'unauthorized')
  t.equal(readAccess(ann, { sub: 'ann', role: 'user' }), 'ok')
  t.equal(readAccess(ann, { sub: 'bob', role: 'user' }), 'forbidden')
  t.equal(readAccess(ann, { sub: 'bob', role: 'admin' }), 'ok', 'admins read anyone’s')
  for (const name of ['logos', 'logos.a', 'logos.a.votes', 'voting.deadline', 'presence.logos']) t.equal(readAccess(parseChannel(name)!, null), 'ok', `${name} is public`)
})

test('close codes: what each tells a client, with Centrifugo-style ranges for the rest', async (t) => {
  const action = (code: number | undefined) => closeRule(code).reconnect
  t.equal(action(CloseCode.goingAway), 'spread')
  t.equal(action(CloseCode.rateLimited), 'spread')
  t.ok(closeRule(CloseCode.rateLimited).slowDown, '4008 also slows the client down')
  t.equal(action(CloseCode.slowConsumer), 'spread')
  t.equal(action(CloseCode.unauthorized), 'backoff')
  t.ok(closeRule(CloseCode.unauthorized).newToken, '4001 asks for a new token first')
  t.equal(action(CloseCode.abnormal), 'backoff')
  t.equal(action(undefined), 'backoff', 'a connection given up as dead reads as 1006')
  t.equal(action(CloseCode.internalError), 'backoff')
  for (const code of [1002, 1003, 1007, 1008, 1009]) t.equal(action(code), 'stop', `${code}: the client broke the protocol`)
  t.same([3000, 3499, 4000, 4100, 4499, 1012].map(action), Array(6).fill('backoff'), 'unknown codes in reconnect ranges reconnect')
  t.same([3500, 3999, 4500, 4999].map(action), Array(4).fill('stop'), '3500–3999 and 4500–4999 are terminal')
  t.same(Object.values(CloseCode).sort(), Object.keys(CLOSE_RULES).map(Number).sort(), 'every named code has a rule')
})

test('docs/protocol.md has every close code, with its rule', async (t) => {
  const doc = readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8')
  for (const [code, rule] of Object.entries(CLOSE_RULES)) {
    const row = new RegExp(`^\\| \`${code}\` \\|.*\\| ${rule.reconnect} `, 'm')
    t.match(doc, row, `docs/protocol.md has a row for ${code} saying ${rule.reconnect}`)
  }
})

function client (t: TestLike, url: string) {
  const c = new LogoSyncClient({ url, WebSocket, reconnect: { minDelayMs: 10, baseDelayMs: 50, maxDelayMs: 200 } })
  t.teardown(() => c.close())
  return c
}

test('the SDK stops on a terminal close (1008, 4500) and reconnects on the others (4100, 3000)', async (t) => {
  for (const [code, stops] of [[1008, true], [4500, true], [4100, false], [3000, false]] as const) {
    const server = await fakeSyncServer(t)
    const c = client(t, server.url)
    const errors: SyncError[] = []
    c.on('error', (e) => errors.push(e))
    const conn = await server.connection(0)
    await until(() => c.status === 'open', 2_000, 'open')
    const statuses: string[] = []
    c.on('status', (s, info) => statuses.push(`${s} ${info.closeCode}`))
    conn.socket.close(code, 'test')
    if (stops) {
      await until(() => c.status === 'closed', 2_000, `closed after ${code}`)
      // A retry is armed (status `reconnecting`) in the same turn as the close is handled.
      t.same(statuses, [`closed ${code}`], `${code}: closed, no retry armed`)
      t.match(errors.map((e) => [e.code, e.message]), [['protocol_error', new RegExp(`${code}.*not reconnecting`)]], `${code}: says why it stopped`)
    } else {
      await server.connection(1, 5_000)
      await until(() => c.status === 'open', 2_000, 'open again')
      t.pass(`${code}: reconnected`)
    }
    await server.close()
  }
})
