// Presence across real server processes in the mode the browser test does not cover:
// PostgreSQL alone, no Redis (heartbeat rows and NOTIFY, src/presence/postgres.ts). Counts add
// up across two replicas, a graceful stop removes a replica's members at once, and a SIGKILLed
// replica's members drop out within 2.5 heartbeats. (Redis: test/gallery-replicas.test.ts, in
// Chromium; both backends on their own: test/presence.test.ts.)
import { test } from 'tap'
import { scaledEnv, startServer, type ServerProcess } from './helper.js'
import { SyncClient } from './sync-client.js'

const HEARTBEAT_MS = 1000
const latest = (client: SyncClient) => client.on('presence.logos').at(-1)?.data

async function present (t: Parameters<typeof SyncClient.connect>[0], server: ServerProcess): Promise<SyncClient> {
  const client = await SyncClient.connect(t, server.ws)
  await client.subscribe('presence.logos')
  return client
}

test('PostgreSQL without Redis: presence adds up across replicas; a SIGKILLed replica drops out within 2.5 heartbeats', async (t) => {
  const env = await scaledEnv(t, { REDIS_URL: undefined, SYNC_HEARTBEAT_MS: String(HEARTBEAT_MS), LOG_LEVEL: 'info' })
  const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])
  t.match(a.output(), /"presence":"postgres"/, 'presence runs on PostgreSQL')

  const onA = await present(t, a)
  const onB = [await present(t, b), await present(t, b)]
  for (const client of [onA, ...onB]) await client.until(() => latest(client) === 3, 10_000, 'three everywhere')
  t.pass('one connection on A and two on B: 3 on both')

  onB[1].close()
  await onA.until(() => latest(onA) === 2, 2 * HEARTBEAT_MS, 'a close reaches the other replica')
  t.pass('a closed connection on B leaves A\'s count within two heartbeats')

  const killed = Date.now()
  b.child.kill('SIGKILL')
  await onA.until(() => latest(onA) === 1, 10_000, 'B\'s connection gone')
  const took = Date.now() - killed
  t.ok(took <= 2.5 * HEARTBEAT_MS + 500, `B's member left A's count ${took} ms after SIGKILL (bound 2.5 heartbeats: ${2.5 * HEARTBEAT_MS} ms)`)

  // A clean stop takes the replica out at once, without waiting for its row to expire.
  const c = await startServer(t, env)
  const onC = await present(t, c)
  await onA.until(() => latest(onA) === 2, 10_000, 'C counted')
  await onC.until(() => latest(onC) === 2, 10_000, 'C sees A')
  const stopped = Date.now()
  await c.stop()
  await onA.until(() => latest(onA) === 1, 10_000, 'C gone')
  t.ok(Date.now() - stopped < 2 * HEARTBEAT_MS + 1000, `a stopped replica left at once (${Date.now() - stopped} ms, including its shutdown)`)
})
