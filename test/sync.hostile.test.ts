// Hostile /sync clients found when the service was attacked (issue 9): a client that never reads
// but keeps talking, and identity changes that must be all-or-nothing.
import t from 'tap'
import { listen, token } from './helper.js'
import { SyncClient } from './sync-client.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a client that never reads is closed with 4009 however often it re-subscribes', async (t) => {
  const { app, ws } = await listen(t, { SYNC_MAX_BUFFER_BYTES: '1024', SYNC_SLOW_CONSUMER_MS: '300' })
  // A list of about 400 KB, so every snapshot is big and the socket's buffers fill fast.
  for (let i = 0; i < 200; i++) await app.store.createLogo({ title: `Big ${i}`, imageUrl: 'https://img.test/b.png', description: 'x'.repeat(1900) })
  const greedy = await SyncClient.connect(t, ws)
  await greedy.subscribe('logos')
  greedy.ws.pause()
  // Re-subscribe well within the rate limit, each time asking for the whole list again, and
  // send pings: neither may reset the slow-consumer clock or count as keeping up.
  const started = Date.now()
  let sent = 0
  while (!app.syncStats.disconnects['4009'] && Date.now() - started < 20_000) {
    if (greedy.ws.readyState === greedy.ws.OPEN) {
      greedy.send({ op: 'subscribe', channel: 'logos', id: `again-${sent++}` })
      greedy.send({ op: 'ping' })
    }
    await sleep(50)
  }
  const took = Date.now() - started
  t.equal(app.syncStats.disconnects['4009'], 1, `closed with 4009 (after ${took} ms and ${sent} re-subscribes)`)
  t.ok(took < 15_000, 'within seconds: the time to fill the socket buffers, then SYNC_SLOW_CONSUMER_MS')
})

t.test('an auth op is applied whole or not at all; frames after it wait for its answer', async (t) => {
  const { ws } = await listen(t)
  const client = await SyncClient.connect(t, ws)
  // Sent back to back: the subscribe must see the identity the auth op gave.
  client.send({ op: 'auth', token: await token('carol'), id: 'auth' })
  client.send({ op: 'subscribe', channel: 'users.carol.votes', id: 'mine' })
  t.match(await client.waitFor((f) => f.id === 'auth'), { type: 'authenticated', user: { sub: 'carol', role: 'user' } })
  t.match(await client.waitFor((f) => f.id === 'mine'), { type: 'subscribed', channel: 'users.carol.votes' }, 'the subscribe ran as carol')
  const authAt = client.frames.findIndex((f) => f.id === 'auth')
  const subscribedAt = client.frames.findIndex((f) => f.id === 'mine')
  t.ok(authAt < subscribedAt, 'answers in the order the frames were sent')
})
