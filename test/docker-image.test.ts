// The Dockerfile without a Docker engine (none runs on these machines): linted with
// dockerfile-utils (the validator behind VS Code's Dockerfile support) plus the rules we hold the
// image to, then its build replayed step by step in a temporary directory — the build context
// filtered by .dockerignore, each COPY and RUN of the build stage as written, then a runtime
// directory holding only what the final stage copies — and the result run with the image's ENV
// and CMD, probed with its HEALTHCHECK command, and stopped with SIGTERM.
// One step is not run as written: `RUN npm ci` becomes a hard-linked copy of this checkout's
// node_modules, which `npm ci` installed from the same package-lock.json (in CI, minutes
// before). A second full install here (compiling better-sqlite3 again) took over 7 minutes on a
// busy 2-core machine; what the replay is for — that the files the stages COPY are enough to
// build, prune and run — is checked all the same, `npm run build` and `npm prune` included.
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createRequire } from 'node:module'
import type { Ignore } from '@balena/dockerignore'
import { validate, ValidationSeverity } from 'dockerfile-utils'
import t from 'tap'
import { DOCKERFILE, imageEnv, readDockerfile, type Stage, type Step } from './dockerfile.js'
import { JWT_SECRET, ROOT, bearer, freePort, tempDir, token, waitForHttp } from './helper.js'

// CommonJS whose types declare an ES default export: loaded through require.
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as (options?: { ignorecase?: boolean }) => Ignore
t.setTimeout(600_000)
const stages = readDockerfile()
const build = stages[0]!
const runtime = stages.at(-1)!

t.test('lint: dockerfile-utils finds nothing, and the image follows our rules', async (t) => {
  const problems = validate(readFileSync(DOCKERFILE, 'utf8'))
    .filter((d) => d.severity === ValidationSeverity.ERROR || d.severity === ValidationSeverity.WARNING)
  t.same(problems.map((d) => `line ${d.range.start.line + 1}: ${d.message}`), [], 'no error or warning')

  t.equal(stages.length, 2, 'two stages: build, then a runtime image without compilers')
  for (const stage of stages) t.match(stage.image, /^node:\d+(\.\d+)*-[a-z-]+$/, `${stage.name ?? 'runtime'}: a pinned Node major on a named Debian base, never latest`)
  const nodeMajor = (process.versions.node.split('.')[0])
  t.ok(stages.every((s) => s.image.startsWith(`node:${nodeMajor}`)), `the Node major the project runs on here (${nodeMajor})`)
  const user = runtime.steps.filter((s) => s.keyword === 'USER').at(-1)
  t.ok(user && user.words[0] !== 'root' && user.words[0] !== '0', 'runs as a non-root user')
  const cmd = runtime.steps.find((s) => s.keyword === 'CMD')
  t.same(cmd?.exec, ['node', 'dist/src/server.js'], 'CMD in exec form starting node itself, so SIGTERM reaches the graceful shutdown (not through npm or a shell)')
  const health = runtime.steps.find((s) => s.keyword === 'HEALTHCHECK')
  t.ok(health?.exec && health.exec[0] === 'node', 'HEALTHCHECK in exec form with node (the slim image has no curl)')
  const env = imageEnv(stages)
  for (const secret of ['JWT_SECRET', 'DATABASE_URL', 'REDIS_URL']) t.notOk(secret in env, `${secret} is not baked into the image`)
  t.equal(env.NODE_ENV, 'production', 'NODE_ENV=production')
  t.equal(env.HOST, '0.0.0.0', 'listens on every interface inside the container')
  t.ok(build.steps.some((s) => s.keyword === 'RUN' && /npm prune --omit=dev/.test(s.args)), 'dev dependencies pruned before the runtime copies node_modules')
  t.notOk(runtime.steps.some((s) => s.keyword === 'RUN' && /npm (ci|install)/.test(s.args)), 'the runtime stage installs nothing')
})

/** The build context: the checkout's tracked files that .dockerignore lets through. */
function contextFiles (): string[] {
  const ignore = dockerignore({ ignorecase: false }).add(readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')))
  const tracked = spawnSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\0').filter(Boolean)
  return ignore.filter(tracked).filter((f) => existsSync(join(ROOT, f)))
}

/** COPY <sources…> <dest> from a root (the context, or another stage's directory) into `into`. */
function copy (step: Step, fromRoot: string, into: string, workdir: string, allowed: Set<string> | null): string[] {
  const words = [...step.words]
  const dest = words.pop()!
  const target = join(into, dest.startsWith('/') ? dest : join(workdir, dest))
  const copied: string[] = []
  const intoDir = dest.endsWith('/') || words.length > 1
  for (const source of words) {
    const from = join(fromRoot, source)
    if (!existsSync(from)) throw new Error(`line ${step.line}: COPY ${source}: not there (${from})`)
    const to = intoDir ? join(target, source.split('/').at(-1)!) : target
    mkdirSync(dirname(to), { recursive: true })
    cpSync(from, to, {
      recursive: true,
      filter: (path) => {
        if (!allowed || statSync(path).isDirectory()) return true
        const rel = path.slice(ROOT.length + 1)
        if (allowed.has(rel)) { copied.push(rel); return true }
        return false
      }
    })
  }
  return copied
}

function workdirOf (stage: Stage, upTo: number): string {
  const w = stage.steps.slice(0, upTo).filter((s) => s.keyword === 'WORKDIR').at(-1)
  return (w?.words[0] ?? '/').replace(/^\//, '')
}

t.test('the build replayed outside Docker: the image it makes serves, passes its HEALTHCHECK and stops cleanly', async (t) => {
  const root = tempDir(t, 'logo-sync-image-')
  const buildRoot = join(root, 'build')
  const runRoot = join(root, 'runtime')
  const context = new Set(contextFiles())
  t.ok(context.has('package-lock.json') && !context.has('test/helper.ts') && ![...context].some((f) => f.startsWith('node_modules/')), '.dockerignore keeps tests and node_modules out of the context')

  // Build stage: each step as written, apt-get aside (the compilers it installs are here already).
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? root, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' }
  for (const [i, step] of build.steps.entries()) {
    const workdir = workdirOf(build, i)
    if (step.keyword === 'WORKDIR') mkdirSync(join(buildRoot, step.words[0]!), { recursive: true })
    if (step.keyword === 'COPY') copy(step, ROOT, buildRoot, workdir, context)
    if (step.keyword === 'RUN') {
      if (step.args.trim() === 'npm ci') {
        t.ok(['package.json', 'package-lock.json', 'packages/client/package.json'].every((f) => existsSync(join(buildRoot, workdir, f))), 'npm ci: the manifests, the lockfile and the workspace manifest were copied before it')
        const linked = spawnSync('cp', ['-al', join(ROOT, 'node_modules'), join(buildRoot, workdir, 'node_modules')], { encoding: 'utf8' })
        t.equal(linked.status, 0, `npm ci: this checkout's node_modules linked in ${linked.stderr}`)
        continue
      }
      if (/apt-get/.test(step.args)) {
        t.match(step.args, /apt-get install -y --no-install-recommends python3 make g\+\+/, 'apt-get installs only the native-addon toolchain')
        continue
      }
      const run = spawnSync('sh', ['-c', step.args], { cwd: join(buildRoot, workdir), env, encoding: 'utf8', timeout: 420_000 })
      t.equal(run.status, 0, `line ${step.line}: RUN ${step.args}`, { diagnostic: run.status !== 0, output: `${run.stdout}${run.stderr}`.slice(-4000) })
      if (run.status !== 0) return
    }
  }

  // Runtime stage: only what it copies, from the build stage or the context.
  for (const [i, step] of runtime.steps.entries()) {
    const workdir = workdirOf(runtime, i)
    if (step.keyword === 'WORKDIR') mkdirSync(join(runRoot, step.words[0]!), { recursive: true })
    if (step.keyword === 'COPY') {
      if (step.from === build.name) copy(step, buildRoot, runRoot, workdir, null)
      else copy(step, ROOT, runRoot, workdir, context)
    }
  }
  const app = join(runRoot, workdirOf(runtime, runtime.steps.length))
  t.notOk(existsSync(join(app, 'src')), 'no TypeScript sources in the image')
  t.notOk(existsSync(join(app, 'node_modules/tap')), 'no dev dependencies in the image')
  t.ok(existsSync(join(app, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')), 'the native addon built in the build stage')

  // Run it as the image would, on loopback (the image's HOST=0.0.0.0 is for a container's network).
  const port = await freePort()
  const runEnv = { PATH: process.env.PATH ?? '', ...imageEnv(stages), HOST: '127.0.0.1', PORT: String(port), DATA_DIR: join(root, 'data'), LOG_LEVEL: 'warn', PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0', JWT_SECRET }
  const cmd = runtime.steps.find((s) => s.keyword === 'CMD')!.exec!
  const child = spawn(cmd[0] === 'node' ? process.execPath : cmd[0]!, cmd.slice(1), { cwd: app, env: runEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const base = `http://127.0.0.1:${port}`
  await waitForHttp(`${base}/healthz`, 60_000).catch((err: Error) => { throw new Error(`${err.message}\n${out}`) })

  const health = runtime.steps.find((s) => s.keyword === 'HEALTHCHECK')!.exec!
  const probe = spawnSync(process.execPath, health.slice(1), { env: runEnv, encoding: 'utf8', timeout: 10_000 })
  t.equal(probe.status, 0, 'the HEALTHCHECK command passes against the running image')
  t.equal((await fetch(`${base}/readyz`)).status, 200, '/readyz')
  const created = await fetch(`${base}/logos`, { method: 'POST', headers: { ...bearer(await token('ops', 'admin')), 'content-type': 'application/json' }, body: JSON.stringify({ title: 'From the image', imageUrl: 'https://example.com/a.png' }) })
  t.equal(created.status, 201, 'an admin creates a logo (production mode: the secret comes from the environment)')
  const list = await fetch(`${base}/logos`)
  t.equal(list.status, 200, 'GET /logos')
  t.ok(((await list.json()) as { items: { title: string }[] }).items.some((l) => l.title === 'From the image'), 'and reads it back from the SQLite file in DATA_DIR')
  const page = await fetch(base, { headers: { accept: 'text/html' } })
  t.match(await page.text(), /<div id="root">/, 'the gallery page is in the image')
  t.equal((await fetch(`${base}/docs/json`)).status, 200, 'the OpenAPI document')

  child.kill('SIGTERM')
  const code = await Promise.race([exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000))])
  t.equal(code, 0, 'SIGTERM: exits 0')
  const stopped = spawnSync(process.execPath, health.slice(1), { env: runEnv, encoding: 'utf8', timeout: 10_000 })
  t.equal(stopped.status, 1, 'and the HEALTHCHECK command fails once it is gone (it can fail)')
})
