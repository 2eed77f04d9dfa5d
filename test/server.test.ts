// The real entry point (src/server.ts): boot config validation, the embedded default with demo
// data, persistence across restarts, graceful shutdown on SIGTERM.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { ROOT, bearer, definedOnly, privatePostgres, privateRedis, startServer, tempDir, token } from './helper.js'
import { SyncClient } from './sync-client.js'

function runServer (env: Record<string, string | undefined>): Promise<{ code: number | null, output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/server.ts')], {
      cwd: ROOT,
      env: definedOnly({ PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_PRETTY: 'false', ...env }),
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (d) => { output += d })
    child.stderr.on('data', (d) => { output += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000) // tsx compiles at every start: 10 s and more on a busy 2-core box
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, output }) })
  })
}

t.test('a bad config value stops the process with a message naming the variable', async (t) => {
  for (const [name, value] of [['PORT', 'abc'], ['CACHE_STRATEGY', 'sometimes'], ['DATABASE_URL', 'mysql://x'], ['SYNC_RATE_LIMIT', '-1'], ['JWT_SECRET', 'short']]) {
    const { code, output } = await runServer({ [name]: value, DATA_DIR: tempDir(t) })
    t.equal(code, 78, `${name}: exits with EX_CONFIG`)
    t.match(output, new RegExp(`Invalid configuration: ${name} `), `${name}: named`)
  }
  const prod = await runServer({ NODE_ENV: 'production', DATA_DIR: tempDir(t) })
  t.equal(prod.code, 78)
  t.match(prod.output, /JWT_SECRET is required when NODE_ENV=production/)
})

t.test('embedded default: seeded logos, and logos and votes survive a restart', async (t) => {
  const dataDir = tempDir(t)
  const env = { DATA_DIR: dataDir, SEED_DEMO_DATA: undefined, JWT_SECRET: undefined, NODE_ENV: 'development' }
  const first = await startServer(t, env)
  const { items } = await (await fetch(`${first.http}/logos`)).json() as { items: { _id: string, title: string }[] }
  t.ok(items.length >= 5, 'demo logos seeded into the empty store')
  const { token: tok } = await (await fetch(`${first.http}/auth/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub: 'alice' }) })).json() as { token: string }
  const vote = await fetch(`${first.http}/logos/${items[0]._id}/votes`, { method: 'POST', headers: bearer(tok) })
  t.equal(vote.status, 200)
  t.equal(await first.stop(), 0, 'SIGTERM: clean exit')

  const second = await startServer(t, env)
  const after = await (await fetch(`${second.http}/logos`)).json() as { items: { _id: string, totalVotes: number }[] }
  t.same(after.items.map((l) => l._id), items.map((l) => l._id), 'same logos, not seeded twice')
  t.equal(after.items[0].totalVotes, 1, 'the vote is still there')
  // The restarted server has a new throwaway secret: the old dev token is no longer valid.
  t.equal((await fetch(`${second.http}/me/votes`, { headers: bearer(tok) })).status, 401)
  const again = await token('alice', 'user', { secret: 'x'.repeat(32) })
  t.equal((await fetch(`${second.http}/me/votes`, { headers: bearer(again) })).status, 401)
})

t.test('SIGTERM exits 0 and closes clients with 1001 whatever state Redis and PostgreSQL are in', async (t) => {
  const [pg, redis] = await Promise.all([privatePostgres(t), privateRedis(t)])
  const withRedis = { REDIS_URL: redis.url }
  // The last field: whether every step must close on its own, with time to spare. With
  // PostgreSQL frozen and no Redis, the request in flight waits on the frozen store until the
  // shutdown cuts it, by design, and what is left of the grace period is only just enough.
  const faults: [string, Record<string, string>, () => Promise<void>, () => Promise<void>, boolean][] = [
    ['Redis killed, PostgreSQL frozen', withRedis, async () => { await redis.stop(); await pg.freeze() }, async () => { await pg.thaw(); await redis.start() }, true],
    // Until the shutdown stopped keeping the in-flight request's keep-alive connection open (5 s),
    // this one ran out of grace (the shared Redis client's close was cut: "did not close in time").
    ['Redis frozen, PostgreSQL stopped', withRedis, async () => { await redis.freeze(); await pg.stop() }, async () => { await redis.thaw(); await pg.start() }, true],
    // No Redis: the LISTEN/NOTIFY bus's own connection is frozen too.
    ['PostgreSQL alone, frozen', {}, () => pg.freeze(), () => pg.thaw(), false]
  ]
  for (const [name, env, inflict, heal, allClose] of faults) {
    const server = await startServer(t, { DATABASE_URL: pg.url, ...env, SHUTDOWN_GRACE_MS: '10000' })
    const client = await SyncClient.connect(t, server.ws)
    await client.subscribe('logos')
    await inflict()
    // A request in flight against the broken store, so the shutdown has something to wait for.
    const pending = fetch(`${server.http}/logos/nope`).catch(() => null)
    const started = Date.now()
    t.equal(await server.stop(), 0, `${name}: SIGTERM exits 0`)
    // Exit 0 is the proof it finished inside SHUTDOWN_GRACE_MS (close-with-grace exits 1 past it).
    t.ok(Date.now() - started < 11_000, `${name}: within the grace period (${Date.now() - started} ms; grace 10000, plus the signal's and the exit's way)`)
    t.equal((await client.closedWithin(1000)).code, 1001, `${name}: the client was told 1001`)
    t.notMatch(server.output(), /Stream isn't writeable|killed by timeout/, `${name}: no closing error`)
    if (allClose) t.notMatch(server.output(), /did not close in time/, `${name}: every step closed within the grace period (nothing was cut)`)
    await pending
    await heal()
  }
})
