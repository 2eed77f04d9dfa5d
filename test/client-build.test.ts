// `npm ci && npm start` on a fresh clone: the prestart script (scripts/ensure-build.mjs) builds
// the server and the page, `npm start` serves the gallery and the API, voting works; a second
// start builds nothing; a changed page source rebuilds the page only; `npm pack` of the server
// package carries its dist/. The clone borrows this checkout's installed packages (symlinks)
// instead of downloading them again, and links its own workspace package, as `npm ci` would.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, symlinkSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'tap'
import { ROOT, freePort, tempDir, waitForHttp } from './helper.js'

const ensureBuild = (cwd: string, ...args: string[]) =>
  spawnSync(process.execPath, ['scripts/ensure-build.mjs', ...args], { cwd, encoding: 'utf8', timeout: 240_000 })

test('a fresh clone builds on `npm start` and serves the page and the API', async (t) => {
  const dir = join(tempDir(t), 'logo-sync')
  const clone = spawnSync('git', ['clone', '--quiet', '--local', ROOT, dir], { encoding: 'utf8' })
  t.equal(clone.status, 0, `cloned: ${clone.stderr}`)
  linkNodeModules(dir)
  t.notOk(existsSync(join(dir, 'dist')), 'nothing built yet')

  const port = await freePort()
  // `npm start` runs prestart (ensure-build) and then the server. Its own process group, so the
  // teardown stops npm, the shell and node together.
  const child = spawn('npm', ['start', '--silent'], {
    cwd: dir,
    detached: true,
    // Load shedding off, as for every test server (helper.startServer): a busy machine is not what this tests.
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'warn', LOG_PRETTY: 'false', PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    if (child.exitCode === null && child.pid) {
      try { process.kill(-child.pid, 'SIGTERM') } catch { /* gone */ }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))])
      try { process.kill(-child.pid, 'SIGKILL') } catch { /* gone */ }
    }
  })
  const base = `http://127.0.0.1:${port}`
  await waitForHttp(`${base}/healthz`, 240_000).catch((err: Error) => { throw new Error(`${err.message}\n${out}`) })
  t.match(out, /building client/, 'prestart built the client package (the server imports it)')
  t.match(out, /building server/, 'the server')
  t.match(out, /building web/, 'and the page')

  const page = await fetch(base, { headers: { accept: 'text/html' } })
  t.equal(page.status, 200)
  const html = await page.text()
  t.match(html, /<div id="root">/, 'the gallery page')
  const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1]
  t.ok(script, 'with its script')
  t.equal((await fetch(base + script)).status, 200, 'which is served')

  const { items } = await (await fetch(`${base}/logos`)).json() as { items: { _id: string }[] }
  t.equal(items.length, 6, 'the embedded default seeds demo logos')
  const { token } = await (await fetch(`${base}/auth/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub: 'visitor' }) })).json() as { token: string }
  const vote = await fetch(`${base}/logos/${items[0]._id}/votes`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  t.match(await vote.json(), { totalVotes: 1, voted: true }, 'voting works with a demo sign-in')

  const again = ensureBuild(dir)
  t.equal(again.status, 0)
  t.notMatch(again.stdout, /building/, 'a second start builds nothing')
  const later = new Date(Date.now() + 5_000)
  utimesSync(join(dir, 'web/src/App.tsx'), later, later)
  const web = ensureBuild(dir)
  t.match(web.stdout, /building web/, 'a newer page source rebuilds the page')
  t.notMatch(web.stdout, /building server/, 'and only the page')

  // What `npm publish` would upload: prepack (ensure-build) finds everything built.
  const pack = spawnSync('npm', ['pack', '--dry-run', '--json'], { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { PATH: process.env.PATH, HOME: process.env.HOME } })
  t.equal(pack.status, 0, `npm pack ran: ${pack.stderr}`)
  t.match(pack.stdout + pack.stderr, /prepack[\s\S]*ensure-build/, 'its prepack builds what is stale')
  // stdout: what prepack printed, then the JSON report.
  const report = pack.stdout.slice(pack.stdout.search(/^\[/m))
  const files = (JSON.parse(report) as { files: { path: string }[] }[])[0].files.map((f) => f.path)
  for (const path of ['dist/src/server.js', 'dist/src/app.js', 'dist/src/app.d.ts', 'dist/src/client/index.js', 'dist/src/react/index.js', 'dist/plugins/sync.js', 'dist/routes/logos.js', 'dist/web/index.html', 'README.md']) {
    t.ok(files.includes(path), `the server tarball carries ${path}`)
  }
  t.same(files.filter((f) => /^(src|test|plugins|routes|web|packages)\//.test(f) || f.endsWith('.test.js')), [], 'and no sources, tests or the client package')
})

/**
 * node_modules as `npm ci` would lay it out in the clone: this checkout's installed packages,
 * but the workspace package (@logo-sync/client) linked to the clone's own packages/client.
 */
function linkNodeModules (dir: string): void {
  const modules = join(dir, 'node_modules')
  mkdirSync(join(modules, '@logo-sync'), { recursive: true })
  for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
    if (entry !== '@logo-sync') symlinkSync(join(ROOT, 'node_modules', entry), join(modules, entry))
  }
  symlinkSync('../../packages/client', join(modules, '@logo-sync/client'), 'dir')
}
