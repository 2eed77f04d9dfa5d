// Chromium plumbing for the gallery's browser tests: Debian's Chromium through playwright-core,
// pages that reach only loopback (logo images fall back to placeholders), axe-core injected
// from npm, and the demo page built first.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core'
import { ROOT, type TestLike } from './helper.js'

export const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** Screenshots for a human look (git-ignored). */
export const SHOTS = join(ROOT, 'tmp/browser')

/** Builds dist/web when it is missing or older than its sources; returns the build's output. */
export function buildPage (): { ok: boolean, output: string } {
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts/ensure-build.mjs'), '--web'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 })
  mkdirSync(SHOTS, { recursive: true })
  return { ok: built.status === 0, output: `${built.stdout}${built.stderr}` }
}

/**
 * Debian's Chromium, closed at the test's end. Its absence is a failure, never a skip:
 * `npm run test:all` installs it (apt-get install chromium).
 */
export async function launch (t: TestLike): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install it (apt-get install chromium), which \`npm run test:all\` does`)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 })
  t.teardown(() => browser.close())
  return browser
}

/** A page in a context of its own; uncaught page errors are collected into `errors`. */
export async function openPage (browser: Browser, url: string, errors: string[], opts: BrowserContextOptions = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts })
  await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()))
  const page = await context.newPage()
  page.on('pageerror', (err) => errors.push(`${url}: ${err.message}`))
  await page.goto(url)
  return page
}

export const waitLive = (page: Page, timeout = 20_000) =>
  page.waitForSelector('[data-testid=status][data-status=open]', { timeout })

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

export interface AxeViolation { id: string, impact: string | null, help: string, targets: string[] }

/** axe-core's serious and critical violations on the page as it is now (all rules axe runs by default). */
export async function axeViolations (page: Page): Promise<AxeViolation[]> {
  if (!await page.evaluate(() => 'axe' in window)) await page.addScriptTag({ content: axeSource })
  return page.evaluate(async () => {
    interface Result { id: string, impact: string | null, help: string, nodes: Array<{ target: unknown[], failureSummary?: string }> }
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: Result[] }> } }).axe
    const { violations } = await axe.run(document, { resultTypes: ['violations'] })
    return violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary ?? ''}`) }))
  })
}
