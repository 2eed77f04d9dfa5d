// The client package the way users get it: `npm pack` of packages/client (its prepack builds
// dist/), installed with react, react-dom and ws into an empty app outside the repository, then:
// the tarball holds what its exports name and nothing else; `npm ls` shows no server package;
// it runs in Node with `ws` and, built by Vite into a page, in Chromium, against a real server;
// the seed's LogoCard/VotePage compile against its types; the size budget holds.
//
// The install is offline: the app's package-lock.json is cut from this repository's (same
// versions, same tarball URLs and integrity), so `npm ci --offline` takes everything from the
// npm cache that this repository's `npm ci` filled. Only if that cache lacks something does it
// fall back to the registry (--prefer-offline).
import { spawnSync } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { extname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { launch } from './chromium.js'
import t from 'tap'
import { build } from 'vite'
import { ROOT, startServer, tempDir } from './helper.js'
import { seedExamples } from './seed.js'

const PACKAGE = join(ROOT, 'packages/client')
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
/** The budget, in KiB of minified and gzipped JavaScript, React external. */
const BUDGET = { client: 10, withReact: 12 }
/** What the app installs beside the tarball, at this repository's versions. */
const PEERS = ['react', 'react-dom', 'ws', '@types/react', '@types/react-dom', '@types/ws']
const SERVER_PACKAGES = ['fastify', 'pg', 'ioredis', 'better-sqlite3', 'typebox', 'logo-sync']

const run = (cmd: string, args: string[], cwd: string, timeout = 240_000) => {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, NODE_OPTIONS: '', npm_config_update_notifier: 'false' } })
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', output: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}` }
}

interface LockEntry { version: string, resolved?: string, integrity?: string, dependencies?: Record<string, string>, [k: string]: unknown }

/** A package-lock.json for `deps`, cut from this repository's: the closure of their dependencies. */
function lockFrom (deps: string[], extra: Record<string, LockEntry>) {
  const root = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }
  const packages: Record<string, LockEntry> = {}
  const add = (name: string) => {
    const key = `node_modules/${name}`
    if (packages[key]) return
    const entry = root.packages[key]
    if (!entry) throw new Error(`${name} is not in package-lock.json`)
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...rest } = entry
    packages[key] = rest as LockEntry
    for (const dep of Object.keys(entry.dependencies ?? {})) add(dep)
  }
  deps.forEach(add)
  const dependencies: Record<string, string> = Object.fromEntries(deps.map((n) => [n, packages[`node_modules/${n}`].version]))
  for (const [key, entry] of Object.entries(extra)) {
    packages[key] = entry
    dependencies[key.replace(/^node_modules\//, '')] = entry.resolved!
  }
  const pkg = { name: 'consumer', version: '1.0.0', private: true, type: 'module', dependencies }
  return { pkg, lock: { name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'consumer', version: '1.0.0', dependencies }, ...packages } } }
}

const work = tempDir(t, 'logo-sync-client-package-')
const app = join(work, 'app')
mkdirSync(app)

t.test('npm pack: the tarball carries its built dist/ and nothing else', async (t) => {
  const pack = run('npm', ['pack', '--json', '--pack-destination', work], PACKAGE)
  t.equal(pack.code, 0, `npm pack${pack.code ? `: ${pack.output}` : ''}`)
  t.match(pack.output, /prepack[\s\S]*tsc/, 'prepack built it')
  const report = JSON.parse(pack.stdout.slice(pack.stdout.search(/^\[/m))) as { name: string, filename: string, integrity: string, version: string, files: { path: string }[] }[]
  const { name, filename, integrity, version, files } = report[0]
  t.equal(name, '@logo-sync/client')
  const paths = files.map((f) => f.path)
  t.same(paths.filter((p) => !['package.json', 'README.md'].includes(p) && !/^dist\/.+\.(js|d\.ts)$/.test(p)), [], `only dist/*.js and *.d.ts besides package.json and README.md (${paths.length} files)`)
  const manifest = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8')) as {
    exports: Record<string, string | Record<string, string>>, dependencies?: object, sideEffects: boolean, peerDependenciesMeta: Record<string, { optional: boolean }>
  }
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target === 'string') continue
    for (const condition of ['types', 'default']) t.ok(paths.includes(target[condition].replace(/^\.\//, '')), `${subpath} → ${condition} is in the tarball`)
  }
  t.same(Object.keys(manifest.exports).sort(), ['.', './package.json', './protocol', './react'])
  t.equal(manifest.dependencies, undefined, 'no dependencies at all')
  t.equal(manifest.sideEffects, false)
  t.equal(manifest.peerDependenciesMeta.react.optional, true, 'react is an optional peer')

  const { pkg, lock } = lockFrom(PEERS, {
    'node_modules/@logo-sync/client': {
      version, resolved: `file:../${filename}`, integrity, license: 'MIT', peerDependencies: { react: '>=18' }, peerDependenciesMeta: { react: { optional: true } }
    }
  })
  writeFileSync(join(app, 'package.json'), JSON.stringify(pkg, null, 2))
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify(lock, null, 2))
  let install = run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], app)
  if (install.code !== 0) {
    t.comment(`offline install failed (npm cache incomplete?), using the registry: ${install.stderr.slice(0, 300)}`)
    install = run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], app)
  }
  t.equal(install.code, 0, `installed into an empty app${install.code ? `: ${install.output}` : ''}`)
})

t.test('npm ls: no server package in the app', async (t) => {
  const ls = run('npm', ['ls', '--all', '--json'], app)
  const names = new Set<string>()
  const walk = (deps: Record<string, { dependencies?: object }> | undefined) => {
    for (const [n, d] of Object.entries(deps ?? {})) {
      names.add(n)
      walk(d.dependencies as Record<string, { dependencies?: object }>)
    }
  }
  walk((JSON.parse(ls.stdout) as { dependencies: Record<string, { dependencies?: object }> }).dependencies)
  t.ok(names.has('@logo-sync/client') && names.has('react'), `the tree: ${[...names].join(', ')}`)
  t.same(SERVER_PACKAGES.filter((n) => names.has(n)), [], 'none of fastify, pg, ioredis, better-sqlite3, typebox')
  const installed = JSON.parse(readFileSync(join(app, 'node_modules/@logo-sync/client/package.json'), 'utf8')) as { dependencies?: object }
  t.equal(installed.dependencies, undefined)
})

t.test('the seed examples compile against the installed package; a wrong use does not', async (t) => {
  // The examples exactly as the seed document writes them (docs/seed), only the imports added.
  const examples = seedExamples()
  t.equal(examples.length, 2, 'LogoCard and VotePage')
  const seed = ["import { useSync } from '@logo-sync/client/react'", "import type { Logo } from '@logo-sync/client'", ...examples, 'export { LogoCard, VotePage }', ''].join('\n')
  writeFileSync(join(app, 'seed.tsx'), seed)
  writeFileSync(join(app, 'node-usage.ts'), `
import { LogoSyncClient, type Logo } from '@logo-sync/client'
import { CloseCode, closeRule } from '@logo-sync/client/protocol'
import { WebSocket } from 'ws'
const client = new LogoSyncClient({ url: 'ws://localhost:3000/sync', WebSocket, getToken: async () => null })
const off = client.subscribe<Logo[]>('logos', (logos) => logos.map((l) => l.totalVotes))
const stops: boolean = closeRule(CloseCode.policyViolation).reconnect === 'stop'
off()
client.close()
export { stops }
`)
  writeFileSync(join(app, 'wrong.tsx'), `
import { useSync } from '@logo-sync/client/react'
import type { Logo } from '@logo-sync/client'
export function Card ({ id }: { id: string }) {
  const { data } = useSync<Logo>('logos', id)
  return <h2>{data.title}</h2>
}
`)
  const tsconfig = (files: string[]) => JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', jsx: 'react-jsx', strict: true, noEmit: true, skipLibCheck: true, lib: ['ES2023', 'DOM'] },
    files
  })
  writeFileSync(join(app, 'tsconfig.json'), tsconfig(['seed.tsx', 'node-usage.ts']))
  writeFileSync(join(app, 'tsconfig.wrong.json'), tsconfig(['wrong.tsx']))
  const good = run(process.execPath, [TSC, '-p', 'tsconfig.json'], app)
  t.equal(good.code, 0, `the seed's LogoCard and VotePage, and Node usage with ws, typecheck\n${good.output}`)
  const wrong = run(process.execPath, [TSC, '-p', 'tsconfig.wrong.json'], app)
  t.not(wrong.code, 0, 'reading possibly-undefined data is a type error')
  t.match(wrong.output, /possibly 'undefined'/)
})

t.test('runs in Node with ws against a real server', async (t) => {
  const server = await startServer(t, { DATA_DIR: tempDir(t), SEED_DEMO_DATA: 'true', JWT_SECRET: undefined })
  writeFileSync(join(app, 'node-check.mjs'), `
import { LogoSyncClient, channelForLogos } from '@logo-sync/client'
import * as react from '@logo-sync/client/react'
import { CLOSE_RULES } from '@logo-sync/client/protocol'
import { WebSocket } from 'ws'
const client = new LogoSyncClient({ url: process.argv[2], WebSocket })
const logos = await new Promise((resolve) => client.subscribe(channelForLogos, resolve))
console.log(JSON.stringify({ logos: logos.length, status: client.status, hooks: Object.keys(react).sort(), closeCodes: Object.keys(CLOSE_RULES).length }))
client.close()
`)
  const node = run(process.execPath, ['node-check.mjs', server.ws], app, 60_000)
  t.equal(node.code, 0, node.output)
  const result = JSON.parse(node.stdout) as { logos: number, status: string, hooks: string[], closeCodes: number }
  t.equal(result.logos, 6, 'the demo logos arrived over the socket')
  t.equal(result.status, 'open')
  t.ok(result.hooks.includes('useSync') && result.hooks.includes('SyncProvider'), `react entry: ${result.hooks.join(', ')}`)
  t.ok(result.closeCodes > 5, 'the protocol entry')
})

t.test('a Vite build of an app on the package runs in Chromium against a real server', async (t) => {
  const web = join(app, 'web')
  mkdirSync(web)
  writeFileSync(join(web, 'index.html'), '<!doctype html><html><body><div id="root"></div><script type="module" src="./main.tsx"></script></body></html>')
  writeFileSync(join(web, 'main.tsx'), `
import { createRoot } from 'react-dom/client'
import { LogoSyncClient, type Logo } from '@logo-sync/client'
import { SyncProvider, useSync, useSyncStatus } from '@logo-sync/client/react'

const client = new LogoSyncClient({ url: new URLSearchParams(location.search).get('sync')! })

function Gallery () {
  const status = useSyncStatus()
  const { data } = useSync<Logo[]>('logos')
  return <ul data-status={status}>{data?.map((l) => <li key={l._id} data-id={l._id}>{l.title}: <b>{l.totalVotes}</b></li>)}</ul>
}

createRoot(document.getElementById('root')!).render(<SyncProvider client={client}><Gallery /></SyncProvider>)
`)
  const out = join(app, 'web-dist')
  await build({
    root: web,
    base: '/app/',
    configFile: false,
    logLevel: 'silent',
    oxc: { jsx: { runtime: 'automatic', importSource: 'react' } },
    build: { outDir: out, emptyOutDir: true }
  })
  t.ok(existsSync(join(out, 'index.html')), 'built')

  const server = await startServer(t, { DATA_DIR: tempDir(t), SEED_DEMO_DATA: 'true', JWT_SECRET: undefined })
  // The built app from a static server of its own on loopback (a page Playwright made up would
  // count as a public origin, and Chromium would block its connection to a loopback server).
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' }
  const files = createServer((req, res) => {
    const file = join(out, new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/app\/?/, '') || 'index.html')
    if (!file.startsWith(out) || !existsSync(file)) return res.writeHead(404).end()
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file))
  })
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => files.close(resolve)))
  const origin = `http://127.0.0.1:${(files.address() as AddressInfo).port}`
  const browser = await launch(t)
  const context = await browser.newContext()
  await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()))
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${origin}/app/index.html?sync=${encodeURIComponent(server.ws)}`)
  const logs: string[] = []
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`))
  await page.waitForSelector('ul[data-status=open] li >> nth=5', { timeout: 30_000 }).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${[...errors, ...logs].join('\n')}\n${await page.content()}`)
  })
  t.pass('six logos, live')
  const id = (await page.locator('li').first().getAttribute('data-id'))!
  const { token } = await (await fetch(`${server.http}/auth/dev-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub: 'pat' }) })).json() as { token: string }
  t.equal((await fetch(`${server.http}/logos/${id}/votes`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status, 200)
  await page.waitForFunction((id) => document.querySelector(`li[data-id="${id}"] b`)?.textContent === '1', id, { timeout: 10_000 })
  t.pass('a vote elsewhere shows live')
  t.same(errors, [], 'no page errors')
})

t.test(`size budget: client ≤ ${BUDGET.client} KiB, with the React hooks ≤ ${BUDGET.withReact} KiB (min+gzip, React external)`, async (t) => {
  const sizeOf = async (name: string, source: string) => {
    const entry = join(app, `${name}.js`)
    writeFileSync(entry, source)
    const result = await build({
      root: app,
      configFile: false,
      logLevel: 'silent',
      // An app build of the entry (a library build would keep whitespace), its exports kept.
      build: { write: false, minify: true, rolldownOptions: { input: entry, preserveEntrySignatures: 'strict', external: [/^react($|\/)/, /^react-dom($|\/)/] } }
    })
    const outputs = (Array.isArray(result) ? result : [result]) as { output: { type: string, code?: string, imports?: string[] }[] }[]
    const chunks = outputs.flatMap((o) => o.output).filter((c) => c.type === 'chunk')
    const externals = chunks.flatMap((c) => c.imports ?? [])
    t.same(externals.filter((x) => !/^react($|\/)/.test(x)), [], `${name}: nothing but React left external (${externals.join(', ')})`)
    const code = chunks.map((c) => c.code).join('')
    return gzipSync(code, { level: 9 }).length
  }
  // Everything exported (no tree shaking helps): the most an app can pull in.
  const client = await sizeOf('client-all', "export * from '@logo-sync/client'\n")
  const withReact = await sizeOf('react-all', "export * from '@logo-sync/client'\nexport * from '@logo-sync/client/react'\n")
  t.comment(`client ${(client / 1024).toFixed(2)} KiB, with the React hooks ${(withReact / 1024).toFixed(2)} KiB`)
  t.ok(client <= BUDGET.client * 1024, `client: ${client} bytes ≤ ${BUDGET.client * 1024}`)
  t.ok(withReact <= BUDGET.withReact * 1024, `with the React hooks: ${withReact} bytes ≤ ${BUDGET.withReact * 1024}`)
})
