// SYNC_MAX_CONNECTIONS_PER_IP: one address cannot hold more /sync sockets than the cap; the
// refusal is an HTTP 429 before the upgrade; the address is the client's behind a trusted proxy.
import t from 'tap'
import WebSocket from 'ws'
import { listen, type TestLike } from './helper.js'

/** Opens a raw WebSocket: resolves with the socket once open, or with the HTTP status that refused it. */
function open (t: TestLike, url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket } | { status: number, retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers })
    t.teardown(() => ws.terminate())
    ws.once('open', () => resolve({ ws }))
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] })
      res.resume()
      ws.terminate()
    })
    ws.once('error', reject)
  })
}

const closed = (ws: WebSocket) => new Promise<void>((resolve) => {
  if (ws.readyState === ws.CLOSED) resolve()
  else ws.once('close', () => resolve())
})

t.test('one address holds at most SYNC_MAX_CONNECTIONS_PER_IP sockets; 429 before the upgrade', async (t) => {
  const { app, ws: url } = await listen(t, { SYNC_MAX_CONNECTIONS_PER_IP: '3' })
  const held = []
  for (let i = 0; i < 3; i++) {
    const r = await open(t, url)
    t.ok('ws' in r, `connection ${i + 1} of 3 opens`)
    if ('ws' in r) held.push(r.ws)
  }
  const refused = await open(t, url)
  t.same(refused, { status: 429, retryAfter: '10' }, 'the fourth is refused with 429 and Retry-After')
  // Failed upgrades (a bad query parameter) and refused ones give their slot back.
  for (let i = 0; i < 5; i++) t.match(await open(t, `${url}?nope=1`), { status: 429 }, 'still full')
  held[0].close()
  await closed(held[0])
  let reopened: Awaited<ReturnType<typeof open>> = { status: 0, retryAfter: undefined }
  for (let i = 0; i < 50 && !('ws' in reopened); i++) {
    reopened = await open(t, url)
    if (!('ws' in reopened)) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok('ws' in reopened, 'a closed connection frees its slot')
  for (const ws of held) ws.terminate()
  await Promise.all(held.map(closed))
  if ('ws' in reopened) { reopened.ws.terminate(); await closed(reopened.ws) }
  // Every slot is back: bad upgrades (400) never held one for long.
  const bad = await open(t, `${url}?nope=1`)
  t.match(bad, { status: 400 }, 'an upgrade with a bad query is a 400 when there is room')
  const again = []
  for (let i = 0; i < 3; i++) again.push(await open(t, url))
  t.ok(again.every((r) => 'ws' in r), 'three open again after everything closed')
  const refusals = /^logo_sync_http_rate_limit_refusals_total\{scope="sync_connections"\} (\d+)$/m.exec((await app.inject('/metrics')).body)
  t.ok(Number(refusals?.[1]) >= 6, `refusals are counted (${refusals?.[1]})`)
})

t.test('behind a trusted proxy the cap is per client address; without TRUST_PROXY a forwarded header changes nothing', async (t) => {
  const proxied = await listen(t, { SYNC_MAX_CONNECTIONS_PER_IP: '2', TRUST_PROXY: '1' })
  const as = (ip: string) => open(t, proxied.ws, { 'x-forwarded-for': ip })
  t.ok('ws' in await as('198.51.100.1'))
  t.ok('ws' in await as('198.51.100.1'))
  t.match(await as('198.51.100.1'), { status: 429 }, 'the third from one client address is refused')
  t.ok('ws' in await as('198.51.100.2'), 'another client behind the same proxy is not')

  const direct = await listen(t, { SYNC_MAX_CONNECTIONS_PER_IP: '2' })
  const spoof = (ip: string) => open(t, direct.ws, { 'x-forwarded-for': ip })
  t.ok('ws' in await spoof('203.0.113.1'))
  t.ok('ws' in await spoof('203.0.113.2'))
  t.match(await spoof('203.0.113.3'), { status: 429 }, 'a made-up X-Forwarded-For does not buy more sockets')
})
