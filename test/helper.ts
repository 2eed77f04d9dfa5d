// Test helpers: build the real app (never a copy), isolate data per test file (own SQLite dir,
// own PostgreSQL schema, own Redis key prefix), and start real server processes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { buildApp } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { JWT_SECRET, PG_URL, REDIS_URL, ROOT, freePort } from './basics.js'

export { JWT_SECRET, PG_URL, REDIS_URL, ROOT, bearer, freePort, token } from './basics.js'

/** The minimal surface of a tap Test we rely on, so helpers work with any subtest. */
export interface TestLike {
  teardown (fn: () => unknown): void
}

type Env = Record<string, string | undefined>

export const uniqueName = (prefix: string) => `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`

/** A fresh temp dir, removed at teardown. */
export function tempDir (t: TestLike, prefix = 'logo-sync-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A PostgreSQL schema of this test's own, dropped at teardown. Pass it as DATABASE_SCHEMA. */
export async function pgSchema (t: TestLike): Promise<string> {
  const schema = uniqueName('t').toLowerCase()
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  await client.query(`CREATE SCHEMA ${schema}`)
  await client.end()
  t.teardown(async () => {
    const c = new pg.Client({ connectionString: PG_URL })
    await c.connect()
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await c.end()
  })
  return schema
}

/** A Redis key prefix of this test's own. */
export const redisPrefix = () => `${uniqueName('test')}:`

/** The two scaled modes: PostgreSQL alone (LISTEN/NOTIFY bus), or PostgreSQL and Redis. */
export type ScaledMode = 'postgres' | 'redis'
export const SCALED_MODES: ScaledMode[] = ['postgres', 'redis']

/**
 * Env for a scaled mode on this test's own PostgreSQL schema (which also names the NOTIFY
 * channel, so parallel test files never hear each other) and, with Redis, its own key prefix.
 */
export async function scaledEnv (t: TestLike, extra: Env = {}, mode: ScaledMode = 'redis'): Promise<Env> {
  return {
    DATABASE_URL: PG_URL,
    DATABASE_SCHEMA: await pgSchema(t),
    ...(mode === 'redis' ? { REDIS_URL, REDIS_KEY_PREFIX: redisPrefix() } : {}),
    ...extra
  }
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it held. */
export async function eventually (check: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** Config for tests: quiet, fixed secret, own data dir, no demo data unless asked. */
export function testConfig (t: TestLike, env: Env = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    LOG_PRETTY: 'false',
    JWT_SECRET,
    DATA_DIR: env.DATA_DIR ?? tempDir(t),
    SEED_DEMO_DATA: 'false',
    HOST: '127.0.0.1',
    PORT: '0',
    // A loaded 2-core test box lags its event loop: no load shedding unless a test asks for it.
    PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0',
    ...env
  })
}

/** A ready app on the real plugins; closed at teardown. */
export async function build (t: TestLike, env: Env = {}, opts: Parameters<typeof buildApp>[1] = {}) {
  const app = await buildApp(testConfig(t, env), opts)
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/** A listening app (for WebSocket clients); returns the app and its base URLs. */
export async function listen (t: TestLike, env: Env = {}, opts: Parameters<typeof buildApp>[1] = {}) {
  const app = await build(t, env, opts)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/sync` }
}

export interface ServerProcess {
  port: number
  http: string
  ws: string
  child: ChildProcess
  output: () => string
  /** SIGTERM and wait for exit. */
  stop: () => Promise<number | null>
}

/** Drops undefined values, so `{ VAR: undefined }` means "unset" for a child process. */
export function definedOnly (env: Env): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined))
}

/** Waits until GET url answers 200, or throws after timeoutMs. */
export async function waitForHttp (url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url)
      if (res.ok) return
      last = new Error(`status ${res.status}`)
    } catch (err) { last = err }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${url} not ready: ${String(last)}`)
}

/**
 * Starts a real server process (`tsx src/server.ts`) on a free loopback port with the given env.
 * Stopped at teardown. Use for multi-replica tests.
 */
export async function startServer (t: TestLike, env: Env = {}, opts: { port?: number } = {}): Promise<ServerProcess> {
  const port = opts.port ?? await freePort()
  let out = ''
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/server.ts')], {
    cwd: ROOT,
    env: definedOnly({
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'false',
      JWT_SECRET,
      HOST: '127.0.0.1',
      PORT: String(port),
      SEED_DEMO_DATA: 'false',
      PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0',
      // SIGTERM stops at once, as it did before the drain existed; the drain tests ask for one.
      SHUTDOWN_DRAIN_MS: '0',
      SHUTDOWN_SPREAD_MS: '0',
      ...env
    }),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    const code = await exited
    clearTimeout(timer)
    return code
  }
  t.teardown(stop)
  try {
    // Generous: tsx compiles the server at start, which takes long on a loaded 2-core machine.
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000)
  } catch (err) {
    await stop()
    throw new Error(`server did not start: ${(err as Error).message}\n${out}`)
  }
  return { port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/sync`, child, output: () => out, stop }
}

const run = (cmd: string, args: string[]) => new Promise<void>((resolve, reject) => {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d) => { err += d })
  child.on('error', reject)
  child.on('exit', (code) => code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`)))
})

export interface PrivateService {
  url: string
  port: number
  /** Stops the server for real (the port then refuses connections). */
  stop: () => Promise<void>
  /** Starts it again on the same port. */
  start: () => Promise<void>
  /** SIGSTOPs every process of the server: connections stay open and nothing answers. */
  freeze: () => Promise<void>
  /** SIGCONTs them again (stop() thaws first, so teardown never meets a frozen server). */
  thaw: () => Promise<void>
}

/** Sends a signal to each pid, ignoring the ones already gone. */
function signalAll (pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try { process.kill(pid, signal) } catch { /* exited meanwhile */ }
  }
}

/**
 * A Redis server of this test's own on a free loopback port, to stop and start at will without
 * touching the shared one other test files use. Keeps nothing on disk.
 */
export async function privateRedis (t: TestLike): Promise<PrivateService> {
  const port = await freePort()
  let child: ChildProcess | null = null
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' })
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        await run('redis-cli', ['-p', String(port), 'ping'])
        return
      } catch (err) {
        if (Date.now() > deadline) throw err
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
  const stop = async () => {
    const c = child
    child = null
    if (!c || c.exitCode !== null) return
    const exited = new Promise((resolve) => c.once('exit', resolve))
    c.kill('SIGKILL')
    await exited
  }
  const pids = (): number[] => child?.pid !== undefined && child.exitCode === null ? [child.pid] : []
  const freeze = async () => signalAll(pids(), 'SIGSTOP')
  const thaw = async () => signalAll(pids(), 'SIGCONT')
  await start()
  t.teardown(stop)
  return { url: `redis://127.0.0.1:${port}`, port, stop, start, freeze, thaw }
}

/**
 * A PostgreSQL cluster of this test's own (initdb into a temp dir, run as the postgres user),
 * to stop and start at will without touching the shared server.
 */
export async function privatePostgres (t: TestLike): Promise<PrivateService> {
  const { readdirSync, chownSync, statSync } = await import('node:fs')
  const bin = join('/usr/lib/postgresql', readdirSync('/usr/lib/postgresql').sort().at(-1)!, 'bin')
  const dir = tempDir(t, 'logo-sync-pg-')
  const { uid, gid } = statSync('/var/lib/postgresql')
  chownSync(dir, uid, gid)
  const port = await freePort()
  const asPostgres = (tool: string, args: string[]) => run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args])
  await asPostgres('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync'])
  const start = () => asPostgres('pg_ctl', ['-D', join(dir, 'data'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, '-w', '-l', join(dir, 'log'), 'start'])
  /** The postmaster and its children (one backend per connection, plus the background workers). */
  const pids = (): number[] => {
    let postmaster: number
    try {
      postmaster = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])
    } catch { return [] }
    const children = spawnSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)], { encoding: 'utf8' }).stdout
    return [postmaster, ...children.split('\n').map((l) => Number(l.trim())).filter((pid) => pid > 0)]
  }
  const freeze = async () => signalAll(pids(), 'SIGSTOP')
  const thaw = async () => signalAll(pids(), 'SIGCONT')
  const stop = async () => {
    await thaw()
    await asPostgres('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', '-w', 'stop']).catch(() => {})
  }
  await start()
  t.teardown(stop)
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, stop, start, freeze, thaw }
}

/** Resolves when the process exits (at once if it already has). */
function exitOf (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

export interface NginxProcess {
  port: number
  http: string
  ws: string
  stop: () => Promise<void>
}

/** The nginx site the project ships (deploy/nginx.conf, an http-context file). */
export const NGINX_SITE = join(ROOT, 'deploy/nginx.conf')

/**
 * deploy/nginx.conf with only its addresses replaced: the upstream's `server` lines become one
 * per loopback port (each keeping the shipped parameters), and `listen` the given loopback port.
 * Everything else (timeouts, headers, retries, the upgrade map) is the shipped text.
 */
export function nginxSiteFor (upstreamPorts: number[], listenPort: number, site = readFileSync(NGINX_SITE, 'utf8')): string {
  const blocks = [...site.matchAll(/^upstream[ \t]+\S+[ \t]*\{[^}]*\}/gm)]
  const listens = [...site.matchAll(/^[ \t]*listen[ \t][^;\n]+;[ \t]*$/gm)]
  if (blocks.length === 0 || listens.length !== 1) throw new Error('deploy/nginx.conf: expected upstream blocks and one listen line')
  // In each upstream block, the first server line becomes one per port (same options), the others go.
  const inBlock = (block: string) => {
    const servers = [...block.matchAll(/^([ \t]*)server[ \t]+\S+:\d+([ \t][^;\n]*)?;[ \t]*$/gm)]
    if (servers.length === 0) throw new Error('deploy/nginx.conf: an upstream block without server lines')
    const [first] = servers
    const replacement = upstreamPorts.map((p) => `${first[1]}server 127.0.0.1:${p}${first[2] ?? ''};`).join('\n')
    let out = ''
    let at = 0
    for (const [i, m] of servers.entries()) {
      out += block.slice(at, m.index) + (i === 0 ? replacement : '')
      at = m.index! + m[0].length + (i === 0 ? 0 : 1) // later server lines go, with their newline
    }
    return out + block.slice(at)
  }
  let out = ''
  let at = 0
  for (const b of blocks) {
    out += site.slice(at, b.index) + inBlock(b[0])
    at = b.index! + b[0].length
  }
  out += site.slice(at)
  return out.replace(/^([ \t]*)listen[ \t][^;\n]+;/m, `$1listen 127.0.0.1:${listenPort};`)
}

/**
 * nginx as the load balancer in front of the given loopback ports, running the shipped
 * deploy/nginx.conf (addresses substituted by nginxSiteFor) inside a main config that only puts
 * pid, logs and temp files in a temp dir. On a free port; stopped at teardown.
 */
export async function startNginx (t: TestLike, upstreamPorts: number[]): Promise<NginxProcess> {
  const port = await freePort()
  const dir = tempDir(t, 'logo-sync-nginx-')
  const conf = join(dir, 'nginx.conf')
  writeFileSync(join(dir, 'site.conf'), nginxSiteFor(upstreamPorts, port))
  writeFileSync(conf, `
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/site.conf;
}
`)
  let out = ''
  const child = spawn('/usr/sbin/nginx', ['-c', conf, '-p', dir, '-e', join(dir, 'error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exitOf(child)
    clearTimeout(timer)
  }
  t.teardown(stop)
  try {
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 10_000)
  } catch (err) {
    await stop()
    throw new Error(`nginx did not start: ${(err as Error).message}\n${out}`)
  }
  return { port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/sync`, stop }
}
