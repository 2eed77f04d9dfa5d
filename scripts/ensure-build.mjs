#!/usr/bin/env node
// Builds what is missing or older than its sources, so `npm ci && npm start` works on a fresh
// clone and a `git pull` never starts yesterday's code. Runs as `prestart`; the browser test
// runs it with `--web` (only the demo page, which Vite builds from the sources directly).
//
//   node scripts/ensure-build.mjs          client package, server (tsc) and page (vite), as `npm run build`
//   node scripts/ensure-build.mjs --web    only dist/web
//
// The server imports the client package (@logo-sync/client, packages/client) at run time through
// node_modules, so its dist/ is built first; the page takes the package from its sources.
//
// "Older" compares modification times: the newest source file against the build's output.
// Concurrent runs (parallel tests) take a lock directory, so only one builds at a time.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const webOnly = process.argv.includes('--web')
const LOCK = join(ROOT, 'dist', '.build-lock')
const STALE_LOCK_MS = 10 * 60_000

const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const VITE = join(ROOT, 'node_modules/vite/bin/vite.js')

const parts = [
  {
    name: 'client',
    output: 'packages/client/dist/index.js',
    sources: ['packages/client/src', 'packages/client/tsconfig.json', 'packages/client/package.json'],
    tool: TSC,
    args: ['-p', 'packages/client/tsconfig.json']
  },
  {
    name: 'server',
    output: 'dist/src/server.js',
    sources: ['src', 'plugins', 'routes', 'scripts/token.ts', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'],
    tool: TSC,
    args: ['-p', 'tsconfig.build.json']
  },
  {
    name: 'web',
    output: 'dist/web/index.html',
    sources: ['web', 'packages/client/src', 'package-lock.json'],
    tool: VITE,
    // Built next door, then swapped in: a running server never sees a half-emptied dist/web.
    args: ['build', '--config', 'web/vite.config.ts', '--logLevel', 'warn', '--emptyOutDir', '--outDir', join(ROOT, 'dist/.web-next')],
    after: swapWeb
  }
].filter((p) => !webOnly || p.name === 'web')

/** Newest mtime (ms) under the given paths; 0 when none exist (an image with dist/ only). */
function newest (paths) {
  let latest = 0
  const visit = (path) => {
    let st
    try { st = statSync(path) } catch { return }
    if (st.isDirectory()) {
      for (const entry of readdirSync(path)) {
        if (entry !== 'node_modules' && !entry.startsWith('.')) visit(join(path, entry))
      }
    } else {
      latest = Math.max(latest, st.mtimeMs)
    }
  }
  for (const p of paths) visit(join(ROOT, p))
  return latest
}

function stale (part) {
  const output = join(ROOT, part.output)
  if (!existsSync(output)) return 'missing'
  return newest(part.sources) > statSync(output).mtimeMs ? 'older than its sources' : null
}

function swapWeb () {
  const next = join(ROOT, 'dist/.web-next')
  const current = join(ROOT, 'dist/web')
  const old = join(ROOT, 'dist/.web-old')
  rmSync(old, { recursive: true, force: true })
  if (existsSync(current)) renameSync(current, old)
  renameSync(next, current)
  rmSync(old, { recursive: true, force: true })
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

function withLock (fn) {
  mkdirSync(dirname(LOCK), { recursive: true })
  const deadline = Date.now() + STALE_LOCK_MS
  for (;;) {
    try {
      mkdirSync(LOCK)
      break
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true })
      } catch { /* released meanwhile */ }
      if (Date.now() > deadline) throw new Error(`waited too long for ${LOCK}`)
      sleep(200)
    }
  }
  try {
    return fn()
  } finally {
    rmSync(LOCK, { recursive: true, force: true })
  }
}

function build (part, why) {
  if (!existsSync(part.tool)) {
    if (existsSync(join(ROOT, part.output))) {
      console.warn(`ensure-build: ${part.name} build is ${why}, but ${part.tool} is not installed (production install?); using it as it is`)
      return
    }
    console.error(`ensure-build: ${part.output} is missing and cannot be built without dev dependencies: run \`npm ci\` then \`npm run build\``)
    process.exit(1)
  }
  console.log(`ensure-build: building ${part.name} (${part.output} ${why})`)
  const run = spawnSync(process.execPath, [part.tool, ...part.args], { cwd: ROOT, stdio: 'inherit' })
  if (run.status !== 0) {
    console.error(`ensure-build: ${part.name} build failed (exit ${run.status ?? run.signal})`)
    process.exit(run.status ?? 1)
  }
  part.after?.()
}

withLock(() => {
  // Checked inside the lock: whoever held it may just have built everything.
  for (const part of parts) {
    const why = stale(part)
    if (why) build(part, why)
  }
})
