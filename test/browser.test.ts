// The demo page in a real browser (Debian's Chromium through playwright-core): two browser
// contexts, each on its own server process, PostgreSQL and a Redis of this test's own between
// them. A vote in one shows in the other within a second; the page heals by itself after its
// server restarts and after Redis goes away and comes back.
//
// The page must be built: this test runs `scripts/ensure-build.mjs --web` first, which builds
// dist/web only when it is missing or older than web/, src/client/ or src/react/.
// Screenshots land in tmp/browser/ (git-ignored) for a human look.
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, type Page } from 'playwright-core'
import { launch } from './chromium.js'
import { test } from 'tap'
import { ROOT, privateRedis, scaledEnv, startServer } from './helper.js'

const SHOTS = join(ROOT, 'tmp/browser')

/** A page in a context of its own; only loopback requests go out (logo images fall back to placeholders). */
async function openPage (browser: Browser, url: string, errors: string[], opts: { clockOffsetMs?: number } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } })
  await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()))
  const page = await context.newPage()
  page.on('pageerror', (err) => errors.push(`${url}: ${err.message}`))
  if (opts.clockOffsetMs) await page.clock.setSystemTime(Date.now() + opts.clockOffsetMs)
  await page.goto(url)
  return page
}

const statusOf = (page: Page) => page.locator('[data-testid=status]').getAttribute('data-status')
const waitStatus = (page: Page, status: string, timeout = 20_000) =>
  page.waitForSelector(`[data-testid=status][data-status=${status}]`, { timeout })
const countOf = async (page: Page, id: string) => Number(await page.locator(`[data-logo-id="${id}"] [data-testid=vote-count]`).textContent())
const waitCount = (page: Page, id: string, n: number, timeout: number) => page.waitForFunction(
  ([id, n]) => document.querySelector(`[data-logo-id="${id}"] [data-testid=vote-count]`)?.textContent === String(n),
  [id, n] as const, { timeout, polling: 'raf' })

async function signIn (page: Page, name: string) {
  await page.fill('#name', name)
  await page.click('form button[type=submit]')
  await page.waitForSelector('[data-testid=signed-in]', { timeout: 10_000 })
}

async function voteOn (page: Page, id: string) {
  const button = page.locator(`[data-logo-id="${id}"] button`)
  await button.waitFor({ state: 'visible' })
  await page.waitForFunction((id) => !document.querySelector<HTMLButtonElement>(`[data-logo-id="${id}"] button`)?.disabled, id, { timeout: 10_000 })
  await button.click()
}

async function subscriptionsOn (http: string): Promise<number> {
  const metrics = await (await fetch(`${http}/metrics`)).text()
  return Number(/^logo_sync_sync_num_subscriptions (\d+)/m.exec(metrics)?.[1])
}

test('two pages on two replicas: live votes, recovery after a restart and a Redis outage', async (t) => {
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts/ensure-build.mjs'), '--web'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 })
  t.equal(built.status, 0, `demo page built: ${built.stdout}${built.stderr}`)
  mkdirSync(SHOTS, { recursive: true })

  const redis = await privateRedis(t)
  const env = await scaledEnv(t, {
    REDIS_URL: redis.url,
    SEED_DEMO_DATA: 'true',
    // No JWT_SECRET: each server mints demo tokens (POST /auth/dev-token) for its own page.
    JWT_SECRET: undefined
  })
  const serverA = await startServer(t, env)
  let serverB = await startServer(t, env) // after A: A seeded the empty database, B finds it seeded

  const browser = await launch(t)
  const errors: string[] = []
  const pageA = await openPage(browser, serverA.http, errors)
  // B's own clock is three hours slow: its countdown must follow the server's clock anyway.
  const pageB = await openPage(browser, serverB.http, errors, { clockOffsetMs: -3 * 3_600_000 })
  await Promise.all([waitStatus(pageA, 'open'), waitStatus(pageB, 'open')])
  await pageA.waitForSelector('.logo-card >> nth=5')
  await pageB.waitForSelector('.logo-card >> nth=5')
  const ids = await pageA.locator('.logo-card').evaluateAll((cards) => cards.map((c) => c.getAttribute('data-logo-id')!))
  t.equal(ids.length, 6, 'the seeded logos')
  t.equal(await pageB.locator('.logo-card svg.placeholder').count(), 6, 'offline images fall back to generated placeholders')

  // The deadline, an hour ahead on the server's clock.
  const adminToken = (await (await fetch(`${serverA.http}/auth/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub: 'admin', role: 'admin' }) })).json() as { token: string }).token
  const deadline = new Date(Date.now() + 3_600_000).toISOString()
  const put = await fetch(`${serverA.http}/voting/deadline`, { method: 'PUT', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ deadline }) })
  t.equal(put.status, 200, 'deadline set')
  await pageB.waitForFunction(() => /Voting ends in/.test(document.querySelector('[data-testid=countdown]')?.textContent ?? ''), null, { timeout: 5_000 })
  t.match(await pageB.locator('[data-testid=countdown] .clock').textContent(), /^(00:59:\d\d|01:00:00)$/, 'countdown on the server clock although the browser clock is 3 h slow')

  // A vote in A shows in B live, without a reload (how fast is the benchmarks' business).
  await signIn(pageA, 'alice')
  const [first, second, third] = ids
  const before = await countOf(pageB, first)
  const started = Date.now()
  await voteOn(pageA, first)
  await waitCount(pageB, first, before + 1, 10_000)
  t.pass(`B saw A's vote live, in ${Date.now() - started} ms`)
  await waitCount(pageA, first, before + 1, 2_000)
  t.match(await pageA.locator(`[data-logo-id="${first}"] button`).textContent(), /Voted/, 'A shows its own vote')
  await pageA.screenshot({ path: join(SHOTS, 'gallery-a.png'), fullPage: true })
  await pageB.screenshot({ path: join(SHOTS, 'gallery-b.png'), fullPage: true })

  // B's server goes away; A votes meanwhile; B's server comes back on the same port.
  const subscribed = await subscriptionsOn(serverB.http)
  t.equal(subscribed, 3 + 2 * ids.length, 'page B holds one subscription per channel (list, deadline, presence, a logo and its votes per card)')
  await serverB.stop()
  await waitStatus(pageB, 'reconnecting', 10_000)
  await pageB.screenshot({ path: join(SHOTS, 'gallery-b-reconnecting.png') })
  const secondBefore = await countOf(pageA, second)
  await voteOn(pageA, second)
  await waitCount(pageA, second, secondBefore + 1, 5_000)
  serverB = await startServer(t, env, { port: serverB.port })
  await waitStatus(pageB, 'open', 30_000)
  await waitCount(pageB, second, secondBefore + 1, 10_000)
  t.pass('B caught up with the vote it missed, by itself')
  t.equal(await subscriptionsOn(serverB.http), subscribed, 'after reconnecting, still one subscription per channel')
  const again = Date.now()
  await voteOn(pageA, third)
  await waitCount(pageB, third, (await countOf(pageA, third)), 5_000)
  t.ok(Date.now() - again < 2_000, 'and live again')

  // Redis goes away: B's page stays connected, misses A's vote, and catches up once Redis is back.
  await redis.stop()
  const firstNow = await countOf(pageA, first)
  await voteOn(pageA, first) // unvote: alice voted for it above
  await waitCount(pageA, first, firstNow - 1, 10_000)
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(await countOf(pageB, first), firstNow, 'with Redis down, the change cannot reach the other replica')
  await redis.start()
  await waitCount(pageB, first, firstNow - 1, 20_000)
  t.pass('after Redis returned, B shows the stored count without a reload')
  t.equal(await statusOf(pageB), 'open')

  t.same(errors, [], 'no uncaught errors in either page')
})
