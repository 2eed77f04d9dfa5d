// The PostgreSQL LISTEN/NOTIFY bus: the conformance suite, plus what only it promises — a change
// is announced inside the store's transaction (so if and only if it commits), payloads stay
// under PostgreSQL's limit, channels are isolated per schema, and the listening connection
// reconnects by itself and resyncs.
import { Writable } from 'node:stream'
import { isDeepStrictEqual } from 'node:util'
import pg from 'pg'
import t, { type Test } from 'tap'
import { channelForSchema, MAX_PAYLOAD_BYTES, pack, unpack } from '../src/bus/notify-payload.js'
import { connectPostgresBus } from '../src/bus/postgres.js'
import type { Bus, BusEvent, BusMessage } from '../src/bus/types.js'
import { createPostgresStore } from '../src/store/postgres.js'
import type { Store } from '../src/store/types.js'
import { busConformance } from './bus.conformance.js'
import { build, eventually, PG_URL, pgSchema, privatePostgres, REDIS_URL, redisPrefix, type TestLike } from './helper.js'

const quiet = { info () {}, warn () {}, error () {} }

/** A replica's store and bus on `schema`, wired as plugins/bus.ts wires them; closed at teardown. */
async function replica (t: TestLike, schema: string, origin: string, url = PG_URL) {
  const store = await createPostgresStore({ connectionString: url, schema })
  const bus = await connectPostgresBus({
    connectionString: url,
    store,
    channel: channelForSchema(schema),
    origin,
    log: quiet,
    heartbeatMs: 500,
    retry: { minMs: 50, maxMs: 250 }
  })
  t.teardown(async () => {
    await bus.close()
    await store.close()
  })
  return { store, bus }
}

/** Everything a bus delivers, and a bounded wait for a condition on it. */
function record (bus: Bus) {
  const got: BusMessage[] = []
  bus.subscribe((m) => got.push(m))
  const events = () => got.map((m) => m.event)
  return { got, events, until: (check: (events: BusEvent[]) => boolean) => eventually(() => check(events()), 10_000) }
}

t.test('conformance', async (t) => {
  busConformance(t, async (t: Test) => {
    const schema = await pgSchema(t)
    return { a: (await replica(t, schema, 'replica-a')).bus, b: (await replica(t, schema, 'replica-b')).bus }
  })
})

t.test('a committed write is announced from inside its transaction, to every replica', async (t) => {
  const schema = await pgSchema(t)
  const a = await replica(t, schema, 'a')
  const b = await replica(t, schema, 'b')
  const onA = record(a.bus)
  const onB = record(b.bus)
  const logo = await a.store.createLogo({ title: 'Announced', imageUrl: 'https://x.test/a.png' })
  const vote = await a.store.castVote(logo._id, 'alice')
  const edited = (await b.store.updateLogo(logo._id, { title: 'Edited' }))!
  const deadline = await a.store.setDeadline('2099-01-01T00:00:00.000Z')
  const deleted = (await b.store.deleteLogo(logo._id))!
  const expected: BusEvent[] = [
    { kind: 'logo.created', logo },
    { kind: 'votes', logoId: logo._id, totalVotes: 1, version: vote.version, userId: 'alice', voted: true },
    { kind: 'logo.updated', logo: edited },
    { kind: 'deadline', deadline: deadline.deadline, version: deadline.version },
    { kind: 'logo.deleted', logoId: logo._id, version: deleted.version }
  ]
  for (const [name, on] of [['A', onA], ['B', onB]] as const) {
    t.ok(await on.until((e) => e.length >= expected.length), `replica ${name} received all five`)
    t.same(on.events(), expected, `replica ${name}: every change, in commit order, as stored`)
  }
  t.same(onB.got.map((m) => m.origin), ['a', 'a', 'b', 'a', 'b'], 'stamped with the replica that committed it')
  t.equal(await a.bus.afterCommit(expected[0]), undefined, 'afterCommit sends nothing more')
})

t.test('a write that does not commit, or changes nothing, is never announced', async (t) => {
  const schema = await pgSchema(t)
  const a = await replica(t, schema, 'a')
  const on = record(a.bus)
  const logo = await a.store.createLogo({ title: 'Quiet', imageUrl: 'https://x.test/q.png' })
  await a.store.castVote(logo._id, 'alice')
  t.ok(await on.until((e) => e.length === 2))

  await a.store.castVote(logo._id, 'alice') // a repeat changes nothing
  await t.rejects(a.store.castVote('nosuchlogo', 'alice'), { code: 'not_found' }, 'a vote on a missing logo fails')
  // A transaction that fails after the bus's step has sent its NOTIFY: it rolls back, and so does the NOTIFY.
  const failing = a.store.addTransactionStep!(async () => { throw new Error('fails before COMMIT') })
  await t.rejects(a.store.castVote(logo._id, 'bob'), /fails before COMMIT/)
  await t.rejects(a.store.updateLogo(logo._id, { title: 'Never' }), /fails before COMMIT/)
  failing()
  t.equal((await a.store.getLogo(logo._id))?.title, 'Quiet', 'the failed edit did not commit')
  t.equal((await a.store.getVotes(logo._id))?.totalVotes, 1, 'nor the failed vote')

  // A barrier: once this write arrives, anything sent before it would have arrived too.
  await a.store.castVote(logo._id, 'carol')
  t.ok(await on.until((e) => e.length >= 3))
  t.match(on.events().map((e) => e.kind), ['logo.created', 'votes', 'votes'], 'only the committed changes')
  t.match(on.events()[2], { kind: 'votes', userId: 'carol', totalVotes: 2 })
})

t.test('payloads stay under 8,000 bytes: a batch is packed, an oversized logo goes by reference', async (t) => {
  const votes: BusEvent[] = Array.from({ length: 200 }, (_, i) => ({ kind: 'votes', logoId: `logo${i % 7}`, totalVotes: i, version: i + 2, userId: `user-${i}@example`, voted: true }))
  const payloads = pack(votes, 'origin', 1)
  t.ok(payloads.every((p) => Buffer.byteLength(p) <= MAX_PAYLOAD_BYTES), 'every payload fits')
  t.ok(payloads.length < 10, `200 votes in ${payloads.length} notifications`)
  t.same(payloads.flatMap((p) => unpack(p)!.events), votes, 'unpacked in order, intact')

  // Escape-heavy user text: 2,000 control characters are 12,000 bytes of JSON.
  const schema = await pgSchema(t)
  const a = await replica(t, schema, 'a')
  const b = await replica(t, schema, 'b')
  const on = record(b.bus)
  const description = '\u0001"é'.repeat(666)
  const big = await a.store.createLogo({ title: 'Ünïcode '.repeat(25), imageUrl: `https://x.test/${'p'.repeat(2000)}`, description })
  t.ok(Buffer.byteLength(JSON.stringify({ kind: 'logo.created', logo: big })) > 8000, 'the change alone is over the limit')
  const edited = (await a.store.updateLogo(big._id, { author: 'someone' }))!
  t.ok(await on.until((e) => e.length >= 2))
  const [created, updated] = on.events()
  // Each is read back when it arrives: the creation may already read the edit (a later version is just as good).
  t.ok(created.kind === 'logo.created' && [big, edited].some((l) => isDeepStrictEqual(created.logo, l)), 'the creation, read back from the store')
  t.ok(updated.kind === 'logo.updated' && isDeepStrictEqual(updated.logo, edited), 'then the edit, read back at its version')
  const raw = pack([{ kind: 'logo.updated', logo: edited }], 'a', 1)
  t.same(unpack(raw[0])!.events, [{ ref: 'logo.updated', logoId: big._id, version: edited.version }], 'what travelled was its id and version')
})

t.test('channels are isolated per schema', async (t) => {
  const mine = await replica(t, await pgSchema(t), 'mine')
  const theirs = await replica(t, await pgSchema(t), 'theirs')
  t.not(channelForSchema('one'), channelForSchema('two'))
  t.ok(channelForSchema('s'.repeat(63)).length <= 63, 'a long schema name still makes a valid channel name')
  const onTheirs = record(theirs.bus)
  await mine.bus.publish({ kind: 'deadline', deadline: null, version: 9 })
  await mine.store.createLogo({ title: 'Mine', imageUrl: 'https://x.test/m.png' })
  await theirs.bus.publish({ kind: 'deadline', deadline: null, version: 2 }) // a barrier on their channel
  t.ok(await onTheirs.until((e) => e.length >= 1))
  t.same(onTheirs.events(), [{ kind: 'deadline', deadline: null, version: 2 }], 'only their own deployment\'s changes')
})

t.test('the listening connection reconnects by itself after it is killed, then resyncs', async (t) => {
  const schema = await pgSchema(t)
  const a = await replica(t, schema, 'killed-listener')
  const b = await replica(t, schema, 'writer')
  let resyncs = 0
  a.bus.onResync(() => { resyncs++ })
  const on = record(a.bus)
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  t.teardown(() => admin.end())
  const { rowCount } = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'logo-sync bus killed-listener'")
  t.equal(rowCount, 1, 'its listening backend was terminated')
  t.ok(await eventually(() => resyncs > 0), `it resynced after reconnecting (${resyncs})`)
  await a.bus.ping()
  const logo = await b.store.createLogo({ title: 'After the gap', imageUrl: 'https://x.test/g.png' })
  t.ok(await on.until((e) => e.some((x) => x.kind === 'logo.created' && x.logo._id === logo._id)), 'changes reach it again')
})

t.test('PostgreSQL away: publish and ping fail fast; once it is back the bus listens again and resyncs', async (t) => {
  const server = await privatePostgres(t)
  const a = await replica(t, 'public', 'a', server.url)
  let resyncs = 0
  a.bus.onResync(() => { resyncs++ })
  const on = record(a.bus)
  await server.stop()
  t.ok(await eventually(async () => !(await a.bus.ping().then(() => true, () => false)), 5000), 'ping reports PostgreSQL away')
  const started = Date.now()
  await t.rejects(a.bus.publish({ kind: 'deadline', deadline: null, version: 2 }), 'a publish outside a transaction rejects')
  t.ok(Date.now() - started < 6000, `...without hanging (${Date.now() - started} ms)`)
  await server.start()
  t.ok(await eventually(() => resyncs > 0, 20_000), 'it resynced once PostgreSQL was back')
  await a.store.setDeadline(null)
  t.ok(await on.until((e) => e.some((x) => x.kind === 'deadline')), 'and changes flow again, without a restart')
})

t.test('the app picks its bus from the configuration and logs which and why', async (t) => {
  const lines: string[] = []
  const logStream = new Writable({ write (chunk, _enc, done) { lines.push(...String(chunk).split('\n').filter(Boolean)); done() } })
  const schema = await pgSchema(t)
  const onPostgres = await build(t, { DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema, LOG_LEVEL: 'info' }, { logStream })
  t.equal(onPostgres.bus.kind, 'postgres', 'DATABASE_URL without Redis: LISTEN/NOTIFY')
  await onPostgres.bus.ping()
  const ready = lines.map((l) => JSON.parse(l) as { msg: string, bus?: string, reason?: string, channel?: string }).find((l) => l.bus)
  t.match(ready, { msg: 'bus ready: postgres', bus: 'postgres', reason: /no Redis is configured/, channel: channelForSchema(schema) }, 'the startup log names the bus and why')
  t.equal((await onPostgres.inject('/readyz')).statusCode, 200)
  const withRedis = await build(t, { DATABASE_URL: PG_URL, DATABASE_SCHEMA: await pgSchema(t), REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() })
  t.equal(withRedis.bus.kind, 'redis', 'with Redis configured: Redis')
  t.equal((await build(t)).bus.kind, 'memory', 'neither: in-process')
})

t.test('the bus refuses a store whose transactions cannot carry its publish', async (t) => {
  const sqliteLike: Pick<Store, 'getLogo'> = { getLogo: async () => null }
  await t.rejects(connectPostgresBus({ connectionString: PG_URL, store: sqliteLike, channel: 'x', origin: 'o', log: quiet }), /needs the PostgreSQL store/)
})
