// The admin screens in development mode (one embedded server, no JWT_SECRET: demo tokens), in
// Chromium and driven by keyboard where a person would: "Sign in as admin", add a logo with the
// API's validation errors next to their fields, edit and delete (with confirmation) from the
// card, set and clear the deadline; a forged admin token in the page's storage shows no admin
// controls; vote counts are read out to screen readers gathered, not once per frame.
import { test } from 'tap'
import type { Page } from 'playwright-core'
import { startServer, tempDir, token } from './helper.js'
import { buildPage, launch, openPage, waitLive } from './chromium.js'

const focusedLabel = (page: Page) => page.evaluate(() => {
  const el = document.activeElement as HTMLElement | null
  return el?.getAttribute('aria-label') ?? (el as HTMLInputElement | null)?.labels?.[0]?.textContent ?? el?.textContent ?? null
})

test('development sign-in as admin: add, validate, edit, delete, deadline — by keyboard', async (t) => {
  const built = buildPage()
  t.ok(built.ok, `demo page built: ${built.output}`)
  const server = await startServer(t, { DATA_DIR: tempDir(t), SEED_DEMO_DATA: 'true', JWT_SECRET: undefined })
  const browser = await launch(t)
  const errors: string[] = []
  const page = await openPage(browser, server.http, errors)
  await waitLive(page)
  await page.waitForSelector('.logo-card >> nth=5')
  t.equal(await page.getByRole('button', { name: 'Add logo' }).count(), 0, 'signed out: no admin controls')

  // The demo sign-in offers an admin.
  await page.getByLabel('Your name').fill('ada')
  await page.getByRole('button', { name: 'Sign in as admin' }).click()
  const add = page.getByRole('button', { name: 'Add logo' })
  await add.waitFor({ timeout: 10_000 })
  t.match(await page.locator('[data-testid=signed-in]').textContent(), /ada \(admin\)/)

  // Keyboard: Enter opens the dialog with focus in its first field; Escape closes it and
  // gives focus back to the button that opened it.
  await add.focus()
  await page.keyboard.press('Enter')
  await page.getByRole('dialog', { name: 'Add a logo' }).waitFor()
  t.equal(await focusedLabel(page), 'Title *', 'focus starts in Title')
  await page.keyboard.press('Escape')
  await page.getByRole('dialog').waitFor({ state: 'detached' })
  t.equal(await focusedLabel(page), 'Add logo', 'focus is back on "Add logo"')

  // The API's validation shows next to each field it is about; nothing is created.
  const before = (await (await fetch(`${server.http}/logos`)).json() as { items: unknown[] }).items.length
  await page.keyboard.press('Enter')
  const dialog = page.getByRole('dialog', { name: 'Add a logo' })
  await dialog.waitFor()
  await page.keyboard.press('Tab') // Title stays empty
  await page.keyboard.type('ftp://example.com/x.png')
  await dialog.getByRole('button', { name: 'Save' }).click()
  const titleError = await describedError(page, 'Title')
  t.equal(titleError, 'Required.', 'an empty title: next to Title')
  t.match(await describedError(page, 'Image URL'), /^Must be an http\(s\) URL\b.*\.$/, 'an ftp URL: the server\'s reason, next to Image URL')
  t.equal(await focusedLabel(page), 'Title *', 'focus moved to the first field in error')
  t.equal((await (await fetch(`${server.http}/logos`)).json() as { items: unknown[] }).items.length, before, 'nothing created')

  // Fixed, by keyboard; Enter in a field saves. The preview follows the URL as typed.
  await page.keyboard.type('Harbor')
  await page.keyboard.press('Tab')
  await page.keyboard.press('ControlOrMeta+a')
  await page.keyboard.type('https://example.com/harbor.png')
  await dialog.locator('figure.preview svg.placeholder, figure.preview img').first().waitFor()
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab') // past the hint-less description into Author
  await page.keyboard.type('Mira')
  await page.keyboard.press('Enter')
  await dialog.waitFor({ state: 'detached' })
  const card = page.locator('.logo-card', { has: page.getByRole('heading', { name: 'Harbor', exact: true }) })
  await card.waitFor({ timeout: 5_000 })
  t.match(await card.textContent(), /by Mira/, 'the new logo, live on the admin page itself')
  const stored = (await (await fetch(`${server.http}/logos`)).json() as { items: Array<{ title: string, imageUrl: string, author?: string, description?: string }> }).items.find((l) => l.title === 'Harbor')
  t.match(stored, { imageUrl: 'https://example.com/harbor.png', author: 'Mira' }, 'stored as typed')
  t.notOk(stored && 'description' in stored, 'an empty optional field is left out')

  // Edit from the card, by keyboard.
  await page.getByRole('button', { name: 'Edit Harbor', exact: true }).focus()
  await page.keyboard.press('Enter')
  await page.getByRole('dialog', { name: 'Edit “Harbor”' }).waitFor()
  await page.keyboard.press('ControlOrMeta+a')
  await page.keyboard.type('Harbor Lights')
  await page.keyboard.press('Enter')
  await page.getByRole('heading', { name: 'Harbor Lights', exact: true }).waitFor({ timeout: 5_000 })
  t.equal(await page.getByRole('button', { name: 'Edit Harbor Lights', exact: true }).count(), 1, 'the card\'s buttons follow the new title')

  // Delete asks first; "Keep it" has the focus, so a stray Enter deletes nothing.
  await page.getByRole('button', { name: 'Delete Harbor Lights', exact: true }).focus()
  await page.keyboard.press('Enter')
  await page.getByRole('dialog', { name: 'Delete “Harbor Lights”?' }).waitFor()
  t.equal(await focusedLabel(page), 'Keep it')
  await page.keyboard.press('Enter')
  await page.getByRole('dialog').waitFor({ state: 'detached' })
  t.equal(await page.getByRole('heading', { name: 'Harbor Lights', exact: true }).count(), 1, 'kept')
  await page.getByRole('button', { name: 'Delete Harbor Lights', exact: true }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'Yes, delete' }).click()
  await page.getByRole('heading', { name: 'Harbor Lights', exact: true }).waitFor({ state: 'detached', timeout: 5_000 })
  t.equal((await fetch(`${server.http}/logos`).then((r) => r.json()) as { items: Array<{ title: string }> }).items.some((l) => l.title === 'Harbor Lights'), false, 'deleted on the server')

  // The deadline: an empty field says what to do; a time in the past closes voting; clearing reopens it.
  const deadline = page.getByLabel('Voting deadline')
  await page.getByRole('button', { name: 'Set deadline' }).click()
  t.equal(await describedError(page, 'Voting deadline'), 'Pick a date and time, or clear the deadline.')
  await deadline.fill('2020-01-01T09:30')
  await page.getByRole('button', { name: 'Set deadline' }).click()
  await page.waitForFunction(() => /Voting closed/.test(document.querySelector('[data-testid=countdown]')?.textContent ?? ''), null, { timeout: 5_000 })
  const voting = await (await fetch(`${server.http}/voting`)).json() as { deadline: string, open: boolean }
  t.equal(voting.deadline, new Date('2020-01-01T09:30').toISOString(), 'the local time typed is the instant stored')
  t.equal(voting.open, false)
  t.match(await page.locator('[data-testid=stored-deadline]').textContent(), voting.deadline, 'shown back as stored')
  await page.getByRole('button', { name: 'Clear deadline' }).click()
  await page.waitForFunction(() => /no deadline set/.test(document.querySelector('[data-testid=countdown]')?.textContent ?? ''), null, { timeout: 5_000 })
  t.equal(await deadline.inputValue(), '', 'the field follows the stored value')
  t.same(errors, [], 'no uncaught errors')
})

test('a forged admin token in the page shows no admin controls, and the page carries on signed out', async (t) => {
  t.ok(buildPage().ok)
  const server = await startServer(t, { DATA_DIR: tempDir(t), SEED_DEMO_DATA: 'true' })
  const browser = await launch(t)
  const errors: string[] = []
  const page = await openPage(browser, server.http, errors)
  await waitLive(page)
  const forged = await token('mallory', 'admin', { secret: 'not-the-server-secret-not-the-server' })
  await page.evaluate((tok) => localStorage.setItem('logo-sync-demo-session', JSON.stringify({ name: 'mallory', token: tok, role: 'admin' })), forged)
  await page.reload()
  await page.waitForSelector('.logo-card >> nth=5')
  // The server refuses the token (4001); with nothing to renew it from, the page signs out and reconnects anonymously.
  await page.waitForFunction(() => {
    const c = (window as unknown as { logoSync: { status: string, user: unknown } }).logoSync
    return c.status === 'open' && c.user === null && localStorage.getItem('logo-sync-demo-session') === null
  }, null, { timeout: 15_000 })
  t.equal(await page.getByRole('button', { name: 'Add logo' }).count(), 0, 'no "Add logo"')
  t.equal(await page.getByRole('button', { name: /^(Edit|Delete) / }).count(), 0, 'no edit or delete on the cards')
  t.equal(await page.getByLabel('Voting deadline').count(), 0, 'no deadline field')
  t.equal(await page.getByLabel('Token').count(), 1, 'the production sign-in (a token from the app) is offered')
  t.same(errors, [])
})

test('vote counts are announced politely, gathered: one message for a burst, not one per frame', async (t) => {
  t.ok(buildPage().ok)
  const server = await startServer(t, { DATA_DIR: tempDir(t), SEED_DEMO_DATA: 'true', SYNC_CONFLATE_MS: '20' })
  const browser = await launch(t)
  const errors: string[] = []
  const page = await openPage(browser, server.http, errors)
  await waitLive(page)
  await page.waitForSelector('.logo-card >> nth=5')
  const region = page.getByTestId('vote-announcer')
  t.equal(await region.getAttribute('aria-live'), 'polite')
  t.equal(await region.textContent(), '', 'what the page first shows is not announced')
  t.equal(await page.locator('.logo-card [aria-live]').count(), 0, 'no live region per card')
  await page.evaluate(() => {
    const w = window as unknown as { announced: string[] }
    w.announced = []
    new MutationObserver(() => w.announced.push(document.querySelector('[data-testid=vote-announcer]')!.textContent ?? ''))
      .observe(document.querySelector('[data-testid=vote-announcer]')!, { childList: true, characterData: true, subtree: true })
    const counts = window as unknown as { countChanges: number }
    counts.countChanges = 0
    new MutationObserver(() => { counts.countChanges++ })
      .observe(document.querySelector('.logo-card [data-testid=vote-count]')!, { childList: true, characterData: true, subtree: true })
  })
  const first = await page.locator('.logo-card').first()
  const id = (await first.getAttribute('data-logo-id'))!
  const title = (await first.locator('h2').textContent())!
  const voters = await Promise.all(Array.from({ length: 8 }, (_, i) => token(`burst${i}`)))
  // One after another, so the page sees the count move in several frames.
  for (const v of voters) {
    const res = await fetch(`${server.http}/logos/${id}/votes`, { method: 'POST', headers: { authorization: `Bearer ${v}` } })
    t.equal(res.status, 200, 'vote counted')
    await page.waitForTimeout(30)
  }
  await page.waitForFunction((text) => document.querySelector('[data-testid=vote-announcer]')?.textContent === text, `Votes now: ${title} 8 votes.`, { timeout: 10_000 })
  const { announced, countChanges } = await page.evaluate(() => ({ announced: (window as unknown as { announced: string[] }).announced, countChanges: (window as unknown as { countChanges: number }).countChanges }))
  t.ok(countChanges > 1, `the card's count changed ${countChanges} times`)
  t.ok(announced.length <= 2 && announced.length < countChanges, `announced ${announced.length} time(s): ${JSON.stringify(announced)}`)
  t.same(errors, [])
})

/** The text of the error message a labelled field points at with aria-describedby. */
async function describedError (page: Page, label: string): Promise<string | null> {
  const field = page.getByLabel(label, { exact: false }).first()
  await page.waitForFunction((el) => el?.getAttribute('aria-invalid') === 'true', await field.elementHandle(), { timeout: 5_000 })
  return field.evaluate((el) => {
    const ids = (el.getAttribute('aria-describedby') ?? '').split(/\s+/)
    return ids.map((id) => document.getElementById(id)).find((n) => n?.classList.contains('field-error'))?.textContent ?? null
  })
}
