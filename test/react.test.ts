// logo-sync/react: server rendering in Node (initialData, fallbackData, the provider), and the
// hook in a real browser on the demo page: with the WebSocket refused (a proxy that drops
// upgrades), `refreshInterval` keeps the page's counts fresh over HTTP; once the socket is let
// through, the page goes live; the vote button's optimistic count (mutate). The hook's other
// features are test/react-hooks.test.ts.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { launch } from './chromium.js'
import { createElement as h } from 'react'
import { renderToString } from 'react-dom/server'
import { test } from 'tap'
import { LogoSyncClient, type Logo } from '@logo-sync/client'
import { SyncProvider, useSync } from '@logo-sync/client/react'
import { ROOT, startServer, tempDir } from './helper.js'

const logo: Logo = {
  _id: 'l1',
  title: 'Server-rendered',
  imageUrl: 'https://example.com/x.png',
  totalVotes: 7,
  version: 3,
  createdAt: '2025-01-01T00:00:00.000Z',
  updatedAt: '2025-01-01T00:00:00.000Z'
}

test('server rendering: initialData and fallbackData show before any socket exists', async (t) => {
  const client = new LogoSyncClient({ url: 'ws://127.0.0.1:9/sync', autoConnect: false })
  t.teardown(() => client.close())
  function Card () {
    const { data: shown, status } = useSync<Logo>('logos', logo._id, { initialData: logo })
    const { data: votes } = useSync<number>(`logos.${logo._id}.votes`, undefined, { fallbackData: logo.totalVotes })
    const { data: deadline } = useSync<string>('voting.deadline')
    return h('div', null, `${shown.title}|${votes}|${deadline ?? 'none'}|${status}`)
  }
  const html = renderToString(h(SyncProvider, { client }, h(Card)))
  t.match(html, /Server-rendered\|7\|none\|idle/)
  t.equal(client.status, 'idle', 'rendering on the server opens no socket')
})

test('a channel whose state is null (no deadline set) shows null, not the fallback or "loading"', async (t) => {
  const client = new LogoSyncClient({ url: 'ws://127.0.0.1:9/sync', autoConnect: false })
  t.teardown(() => client.close())
  const show = (v: unknown) => (v === null ? 'null' : v === undefined ? 'undefined' : String(v))
  function Deadline () {
    const { data: plain } = useSync<string | null>('voting.deadline')
    const { data: withFallback } = useSync<string | null>('voting.deadline', undefined, { fallbackData: 'fallback' })
    return h('div', null, `${show(plain)}|${show(withFallback)}`)
  }
  const page = () => renderToString(h(SyncProvider, { client }, h(Deadline)))
  t.match(page(), /undefined\|fallback/, 'nothing held yet: undefined, or the fallback')
  client.prime('voting.deadline', null)
  t.equal(client.getState('voting.deadline').status, 'ready')
  t.match(page(), /null\|null/, 'a ready null is the data: "no deadline", not "still loading"')
})

test('useSync outside a SyncProvider says what is missing', async (t) => {
  function Lonely () {
    useSync('logos')
    return null
  }
  t.throws(() => renderToString(h(Lonely)), /SyncProvider/)
})

test('with the WebSocket refused, refreshInterval keeps counts fresh over REST; then the socket takes over', async (t) => {
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts/ensure-build.mjs'), '--web'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 })
  t.equal(built.status, 0, `demo page built: ${built.stdout}${built.stderr}`)
  const server = await startServer(t, { DATA_DIR: tempDir(t), SEED_DEMO_DATA: 'true', JWT_SECRET: undefined })
  const browser = await launch(t)
  const context = await browser.newContext()
  await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()))
  let blocked = true
  let upgrades = 0
  await context.routeWebSocket(/\/sync/, (ws) => {
    upgrades++
    if (blocked) ws.close({ code: 1011, reason: 'blocked by the test' })
    else ws.connectToServer()
  })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(server.http)
  await page.waitForSelector('.logo-card >> nth=5', { timeout: 15_000 })
  await page.waitForSelector('[data-testid=status][data-status=reconnecting]', { timeout: 10_000 })
  t.pass('the socket is refused: not live')
  // No deadline is the default: the page must say so, not keep "Loading the deadline…".
  await page.waitForFunction(() => /no deadline set/.test(document.querySelector('[data-testid=countdown]')?.textContent ?? ''), null, { timeout: 10_000 })
  t.pass('no deadline: voting is open')
  const id = (await page.locator('.logo-card').first().getAttribute('data-logo-id'))!

  // Someone votes elsewhere; without a socket the card's refreshInterval (2 s) must show it.
  const { token } = await (await fetch(`${server.http}/auth/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub: 'zoe' }) })).json() as { token: string }
  const voted = await fetch(`${server.http}/logos/${id}/votes`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  t.equal(voted.status, 200)
  const count = () => page.locator(`[data-logo-id="${id}"] [data-testid=vote-count]`).textContent()
  await page.waitForFunction((id) => document.querySelector(`[data-logo-id="${id}"] [data-testid=vote-count]`)?.textContent === '1', id, { timeout: 6_000 })
  t.equal(await count(), '1', 'the count arrived over REST polling')
  t.ok(upgrades >= 1, `the page kept trying the socket (${upgrades} attempts so far)`)

  // The socket is let through: "Retry now" (or the next backoff) brings the page live.
  blocked = false
  // dispatchEvent, not click: the countdown beside the button changes its width every 250 ms,
  // so the button never passes Playwright's "stable" check; the click handler is what matters.
  await page.locator('text=Retry now').dispatchEvent('click')
  await page.waitForSelector('[data-testid=status][data-status=open]', { timeout: 15_000 })
  await fetch(`${server.http}/logos/${id}/votes`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })
  await page.waitForFunction((id) => document.querySelector(`[data-logo-id="${id}"] [data-testid=vote-count]`)?.textContent === '0', id, { timeout: 3_000 })
  t.pass('live over the socket again')

  // Signing in switches the live connection's identity in-band; signing out reconnects anonymously.
  await page.fill('#name', 'yara')
  await page.click('form button[type=submit]')
  await page.waitForSelector('[data-testid=signed-in]')
  const button = page.locator(`[data-logo-id="${id}"] button`)
  await page.waitForFunction((id) => document.querySelector(`[data-logo-id="${id}"] button`)?.textContent === 'Vote', id)
  await button.click()
  await page.waitForFunction((id) => /Voted/.test(document.querySelector(`[data-logo-id="${id}"] button`)?.textContent ?? ''), id, { timeout: 5_000 })
  t.equal(await page.evaluate(() => (window as unknown as { logoSync: LogoSyncClient }).logoSync.user?.sub), 'yara', 'the connection acts as the signed-in user')
  await page.click('text=Sign out')
  await page.waitForFunction((id) => document.querySelector(`[data-logo-id="${id}"] button`)?.textContent === 'Sign in to vote', id, { timeout: 5_000 })
  await page.waitForFunction(() => {
    const c = (window as unknown as { logoSync: LogoSyncClient }).logoSync
    return c.status === 'open' && c.user === null
  }, null, { timeout: 15_000 })
  t.pass('live and anonymous again after signing out')
  t.same(errors, [], 'no uncaught errors')
})

test("the demo page's vote button: the count moves at once, pushes meanwhile cannot move it back, errors (no network, 409 voting_closed) take it back", async (t) => {
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts/ensure-build.mjs'), '--web'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 })
  t.equal(built.status, 0, `demo page built: ${built.stdout}${built.stderr}`)
  const server = await startServer(t, { DATA_DIR: tempDir(t), SEED_DEMO_DATA: 'true', JWT_SECRET: undefined })
  const devToken = async (sub: string, role = 'user') => ((await (await fetch(`${server.http}/auth/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub, role }) })).json()) as { token: string }).token
  const browser = await launch(t)
  const context = await browser.newContext()
  await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.fallback() : route.abort()))
  // The vote requests, held until the test lets them through (or failed as by a lost network).
  let gate: { release: () => void, fail: boolean } | null = null
  await context.route(/\/logos\/[^/]+\/votes$/, async (route) => {
    if (route.request().method() === 'GET' || !gate) return route.fallback()
    const held = gate
    await new Promise<void>((resolve) => { held.release = resolve })
    return held.fail ? route.abort('internetdisconnected') : route.fallback()
  })
  const hold = (fail = false) => { gate = { release: () => {}, fail } }
  const release = () => { const g = gate!; gate = null; g.release() }

  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(server.http)
  await page.fill('#name', 'pat')
  await page.click('form button[type=submit]')
  await page.waitForSelector('[data-testid=signed-in]')
  const id = (await page.locator('.logo-card').first().getAttribute('data-logo-id'))!
  const channel = `logos.${id}.votes`
  await page.waitForFunction((id) => document.querySelector(`[data-logo-id="${id}"] button`)?.textContent === 'Vote', id, { timeout: 10_000 })
  // Every count the card shows, in order.
  await page.evaluate((id) => {
    const w = window as unknown as { counts: string[] }
    const count = () => document.querySelector(`[data-logo-id="${id}"] [data-testid=vote-count]`)?.textContent ?? ''
    w.counts = [count()]
    new MutationObserver(() => { if (w.counts.at(-1) !== count()) w.counts.push(count()) })
      .observe(document.querySelector(`[data-logo-id="${id}"]`)!, { subtree: true, childList: true, characterData: true })
  }, id)
  const counts = () => page.evaluate(() => (window as unknown as { counts: string[] }).counts)
  const version = () => page.evaluate((ch) => (window as unknown as { logoSync: LogoSyncClient }).logoSync.getState(ch).version, channel)
  const shows = (n: string) => page.waitForFunction(([id, n]) => document.querySelector(`[data-logo-id="${id}"] [data-testid=vote-count]`)?.textContent === n, [id, n] as const, { timeout: 10_000 })
  const button = page.locator(`[data-logo-id="${id}"] button`)
  const v0 = (await version())!

  hold()
  await button.dispatchEvent('click')
  await shows('1')
  t.pass('the count moved while the vote was still on its way')
  // Someone else votes and takes it back meanwhile: the server pushes 1, then 0.
  const bob = await devToken('bob')
  for (const method of ['POST', 'DELETE']) t.equal((await fetch(`${server.http}/logos/${id}/votes`, { method, headers: { authorization: `Bearer ${bob}` } })).status, 200)
  await page.waitForFunction(([ch, v]) => (window as unknown as { logoSync: LogoSyncClient }).logoSync.getState(ch).version === v, [channel, v0 + 2] as const, { timeout: 10_000 })
  release()
  await page.waitForFunction((id) => /Voted/.test(document.querySelector(`[data-logo-id="${id}"] button`)?.textContent ?? ''), id, { timeout: 10_000 })
  await page.waitForFunction(([ch, v]) => (window as unknown as { logoSync: LogoSyncClient }).logoSync.getState(ch).version === v, [channel, v0 + 3] as const, { timeout: 10_000 })
  await page.evaluate(() => (window as unknown as { logoSync: LogoSyncClient }).logoSync.ping())
  t.same(await counts(), ['0', '1'], 'the card showed 0, then 1, and never went back to 0 (the pushes meanwhile, the answer and its own push)')

  hold(true)
  await button.dispatchEvent('click')
  await shows('0')
  release()
  await shows('1')
  await page.waitForSelector(`[data-logo-id="${id}"] .problem`)
  t.match(await page.locator(`[data-logo-id="${id}"] .problem`).textContent(), /cannot be reached/, 'a lost network takes the count back and says so')

  hold()
  await button.dispatchEvent('click')
  await shows('0')
  const admin = await devToken('root', 'admin')
  const closed = await fetch(`${server.http}/voting/deadline`, { method: 'PUT', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ deadline: new Date(Date.now() - 60_000).toISOString() }) })
  t.equal(closed.status, 200, 'voting closes while the undo is on its way')
  release()
  await shows('1')
  await page.waitForFunction((id) => /Voting has closed/.test(document.querySelector(`[data-logo-id="${id}"] .problem`)?.textContent ?? ''), id, { timeout: 10_000 })
  t.pass('409 voting_closed takes the count back and says so')
  t.same((await counts()).slice(2), ['0', '1', '0', '1'], 'each error went back to the count the server holds')
  t.same(errors, [], 'no uncaught errors')
})
