// Shared by the benchmark scenarios: options, report shape, child processes pinned to cores, load
// generators in processes of their own (with their CPU measured, so a saturated load generator is
// flagged rather than mistaken for a slow server), rounds that alternate the targets, and rows.
//
// The contract a scenario (bench/<name>.bench.ts) keeps:
//   export default async function (opts: BenchOptions): Promise<BenchReport>
// `scenarios` holds its rows (ours vs baseline, measured side by side in the same run);
// `markdown` its section of bench/RESULTS.md; `ok` whether every target it enforces was met.
// With `opts.quick` (CI smoke, `npm run bench -- --quick`) it runs short and small: the whole
// bench finishes in about a minute, rows still carry finite numbers, targets are not enforced.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../test/basics.js'

export { freePort }

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

export interface BenchOptions {
  /** Seconds per measured run (fractional in quick mode). */
  durationS: number
  /** Seconds of unmeasured load per target before the first measured run (0: none). */
  warmupS: number
  connections: number
  /** Measured runs per target, interleaved (A B A B …) so drift hits both alike. */
  rounds: number
  /** CI smoke: short runs, small sizes (subscribers, connections, logos); targets not enforced. */
  quick: boolean
}

/** One measured comparison: ours against its baseline, both measured in this run. */
export interface ScenarioRow {
  /** Stable, unique across the bench, e.g. `votes-store postgres vs naive loop`. */
  name: string
  ours: number
  baseline: number
  /** ours / baseline. */
  ratio: number
  /** The target on the ratio as text, e.g. `≥ 3` or `≤ 1.1`; `—` when only reported. */
  target: string
  met: boolean
  /** Unit of `ours` and `baseline`, e.g. `votes/s`, `µs/delivery`, `ms`, `KB`. */
  unit?: string
  /** E.g. `load generator saturated`, or what limits the figure. */
  note?: string
}

export interface BenchReport {
  title: string
  /** Whether the scenario met its targets (run.ts ignores it in quick mode). */
  ok: boolean
  /** A markdown section for bench/RESULTS.md. */
  markdown: string
  scenarios: ScenarioRow[]
}

export const SATURATED_NOTE = 'load generator saturated'
/** A load process using this share of its core (or more) during a run is saturated. */
export const SATURATION_SHARE = 0.9

/**
 * A row from two measurements. `atLeast`: the ratio must be ≥ it (throughput, higher is better);
 * `atMost`: ≤ it (latency, CPU, memory: lower is better); neither: reported only (met = true).
 */
export function row (name: string, ours: number, baseline: number, opts: { atLeast?: number, atMost?: number, unit?: string, note?: string | string[], saturated?: boolean } = {}): ScenarioRow {
  const ratio = ours / baseline
  let target = '—'
  let met = true
  if (opts.atLeast !== undefined) { target = `≥ ${opts.atLeast}`; met = ratio >= opts.atLeast }
  if (opts.atMost !== undefined) { target = `≤ ${opts.atMost}`; met = ratio <= opts.atMost }
  const notes = [opts.note ?? []].flat().filter((n) => n !== '')
  if (opts.saturated === true) notes.unshift(SATURATED_NOTE)
  return {
    name,
    ours,
    baseline,
    ratio,
    target,
    met: met && Number.isFinite(ratio),
    ...(opts.unit === undefined ? {} : { unit: opts.unit }),
    ...(notes.length === 0 ? {} : { note: notes.join('; ') })
  }
}

/** The summary table of rows (RESULTS.md puts all rows of the run first). */
export function rowsTable (rows: ScenarioRow[]): string {
  const fmt = (x: number) => !Number.isFinite(x) ? String(x) : Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(3)
  return [
    '| scenario | ours | baseline | unit | ratio | target | met | note |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${fmt(r.ours)} | ${fmt(r.baseline)} | ${r.unit ?? ''} | **${r.ratio.toFixed(3)}** | ${r.target} | ${r.target === '—' ? '—' : r.met ? 'yes' : '**no**'} | ${r.note ?? ''} |`)
  ].join('\n')
}

export const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** The p-quantile (0..1) by nearest rank; NaN for no samples. */
export const percentile = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * `rounds` rounds over `targets`, the order rotating each round (A B, B A, …), so drift and other
 * load on the machine fall on every target alike. `run` measures one target once.
 */
export async function alternate<T extends string, R> (rounds: number, targets: readonly T[], run: (target: T, round: number) => Promise<R>): Promise<Array<Record<T, R>>> {
  const results: Array<Record<T, R>> = []
  for (let round = 0; round < rounds; round++) {
    const got = {} as Record<T, R>
    for (let i = 0; i < targets.length; i++) {
      const target = targets[(i + round) % targets.length]
      got[target] = await run(target, round)
    }
    results.push(got)
  }
  return results
}

// ---------------------------------------------------------------------------------------------
// Pinning: servers on one core, load generators on another, when the machine has `taskset` and
// at least two cores. Otherwise nothing is pinned and `pinning.reason` says why (RESULTS.md and
// latest.json carry it).

function detectPinning (): { enabled: boolean, server: number, load: number, reason: string } {
  const n = cpus().length
  if (process.env.BENCH_PIN === '0') return { enabled: false, server: 0, load: 0, reason: 'BENCH_PIN=0' }
  if (n < 2) return { enabled: false, server: 0, load: 0, reason: `${n} core: nothing to pin apart` }
  const probe = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' })
  if (probe.error !== undefined || probe.status !== 0) return { enabled: false, server: 0, load: 0, reason: 'taskset missing (util-linux)' }
  return { enabled: true, server: 0, load: 1, reason: 'server processes on cpu 0, load generators on cpu 1' }
}

export const pinning = detectPinning()
/** The core for servers under test, and for load generators (both 0 when not pinning). */
export const SERVER_CPU = pinning.server
export const LOAD_CPU = pinning.load

/** [command, args] running `command args` on core `cpu` (unchanged when not pinning or cpu is null). */
export function pinnedCommand (cpu: number | null, command: string, args: string[]): [string, string[]] {
  if (!pinning.enabled || cpu === null) return [command, args]
  return ['taskset', ['-c', String(cpu), command, ...args]]
}

/** spawn() on a core. */
export function spawnPinned (cpu: number | null, command: string, args: string[], options: SpawnOptions): ChildProcess {
  const [cmd, argv] = pinnedCommand(cpu, command, args)
  return spawn(cmd, argv, options)
}

/** Pins this process (every thread) to `cpu`; run.ts puts itself on the load core. */
export function pinSelf (cpu: number): boolean {
  if (!pinning.enabled) return false
  return spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' }).status === 0
}

// ---------------------------------------------------------------------------------------------
// Child servers.

export interface ChildServer {
  url: string
  port: number
  child: ChildProcess
  output: () => string
  /** CPU (µs, user + system) the child has used so far, read from /proc without asking it. */
  cpuUs: () => number
  stop: () => Promise<void>
}

const CLOCK_TICK_US = 1_000_000 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100)

/** CPU a process has used (µs, user + system) from /proc/<pid>/stat; NaN where there is no /proc. */
export function processCpuUs (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US
  } catch {
    return NaN
  }
}

export interface ChildOptions {
  /** Core to pin it to: SERVER_CPU by default, null for none. */
  cpu?: number | null
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  nodeArgs?: string[]
  /** Milliseconds to wait for `probePath` to answer (default 60 s: tsx compiles at every start). */
  startTimeoutMs?: number
}

/**
 * Runs a TypeScript entry point (through tsx) as a child process with PORT and HOST=127.0.0.1 set,
 * pinned to the server core, and waits until `probePath` answers below 500.
 */
export async function startChild (entry: string, env: Record<string, string>, probePath: string, opts: ChildOptions = {}): Promise<ChildServer> {
  const port = await freePort()
  let out = ''
  const nodeArgs = [...(opts.nodeArgs ?? []), '--import', 'tsx', join(ROOT, entry)]
  const child = spawnPinned(opts.cpu === undefined ? SERVER_CPU : opts.cpu, process.execPath, nodeArgs, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout!.on('data', (d) => { out = (out + d).slice(-200_000) })
  child.stderr!.on('data', (d) => { out = (out + d).slice(-200_000) })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000)
  for (;;) {
    try {
      const res = await fetch(url + probePath)
      await res.arrayBuffer()
      if (res.status < 500) break
    } catch {}
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop()
      throw new Error(`${entry} did not start:\n${out}`)
    }
    await sleep(100)
  }
  return { url, port, child, output: () => out, cpuUs: () => processCpuUs(child.pid!), stop }
}

// ---------------------------------------------------------------------------------------------
// Load generators in a process of their own, pinned to the load core. The child side calls
// serveLoad(handler); the bench side starts it with startLoadChild(entry) and calls run(input)
// once per measured run. Each run reports the child's own CPU over the handler, so a load
// generator near 100 % of its core is flagged (`saturated`) instead of passing for a slow server.

export interface LoadRun<O> {
  output: O
  /** CPU the load process used during the run (µs, user + system). */
  cpuUs: number
  wallMs: number
  /** cpuUs / wall time: the share of one core the load process used. */
  cpuShare: number
  /** cpuShare ≥ SATURATION_SHARE: the figure may be the load generator's, not the server's. */
  saturated: boolean
}

export interface LoadChild {
  run: <I, O>(input: I) => Promise<LoadRun<O>>
  output: () => string
  stop: () => Promise<void>
}

type LoadMessage = { id: number, ok: true, output: unknown, cpuUs: number, wallMs: number } | { id: number, ok: false, error: string }

/** Starts `entry` (which calls serveLoad) through tsx on the load core, with an IPC channel. */
export async function startLoadChild (entry: string, env: Record<string, string> = {}, opts: Omit<ChildOptions, 'startTimeoutMs'> = {}): Promise<LoadChild> {
  let out = ''
  const child = spawnPinned(opts.cpu === undefined ? LOAD_CPU : opts.cpu, process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', join(ROOT, entry)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  })
  child.stdout!.on('data', (d) => { out = (out + d).slice(-200_000) })
  child.stderr!.on('data', (d) => { out = (out + d).slice(-200_000) })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const pending = new Map<number, { resolve: (m: LoadMessage) => void, reject: (e: Error) => void }>()
  let nextId = 0
  child.on('message', (m: LoadMessage | { ready: true }) => {
    if ('id' in m) { pending.get(m.id)?.resolve(m); pending.delete(m.id) }
  })
  void exited.then(() => {
    for (const p of pending.values()) p.reject(new Error(`load child ${entry} exited (${child.exitCode ?? child.signalCode}):\n${out}`))
    pending.clear()
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`load child ${entry} did not start:\n${out}`)), 60_000)
    child.once('message', () => { clearTimeout(timer); resolve() })
    void exited.then(() => { clearTimeout(timer); reject(new Error(`load child ${entry} exited at start:\n${out}`)) })
  })
  return {
    output: () => out,
    run: async <I, O>(input: I): Promise<LoadRun<O>> => {
      const id = nextId++
      const reply = await new Promise<LoadMessage>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        child.send({ id, input })
      })
      if (!reply.ok) throw new Error(`load child ${entry}: ${reply.error}`)
      const cpuShare = reply.cpuUs / (reply.wallMs * 1000)
      return { output: reply.output as O, cpuUs: reply.cpuUs, wallMs: reply.wallMs, cpuShare, saturated: cpuShare >= SATURATION_SHARE }
    },
    stop: async () => {
      if (child.connected) child.disconnect()
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
      clearTimeout(timer)
    }
  }
}

/** The child side of startLoadChild: answers each run with the handler's output and its CPU. */
export function serveLoad<I, O> (handler: (input: I) => Promise<O>): void {
  if (process.send === undefined) throw new Error('serveLoad: start this file with startLoadChild (no IPC channel)')
  process.on('message', (m: { id: number, input: I }) => {
    void (async () => {
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      try {
        const output = await handler(m.input)
        const cpu = process.cpuUsage(cpu0)
        process.send!({ id: m.id, ok: true, output, cpuUs: cpu.user + cpu.system, wallMs: performance.now() - t0 })
      } catch (err) {
        process.send!({ id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
      }
    })()
  })
  process.on('disconnect', () => process.exit(0))
  process.send({ ready: true })
}

// ---------------------------------------------------------------------------------------------
// HTTP load: autocannon in a pinned child (bench/load-autocannon.ts).

export interface HttpLoad {
  url: string
  connections: number
  /** Seconds. */
  duration: number
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
  headers?: Record<string, string>
  body?: string
  pipelining?: number
  /** Each request signed by a fresh user: Authorization: Bearer <HS256 token with sub `${subPrefix}${n}`>. */
  distinctUsers?: { secret: string, subPrefix: string, role?: 'user' | 'admin' }
}

export interface HttpResult {
  requests: number
  /** Requests per second over the run. */
  rps: number
  seconds: number
  latencyP50: number
  latencyP99: number
  latencyMean: number
  /** errors + timeouts + non-2xx. */
  bad: number
  statusCodes: Record<string, number>
}

/** Starts an autocannon load child on the load core; run(load) once per measured run. */
export async function startHttpLoad (): Promise<{ run: (load: HttpLoad) => Promise<LoadRun<HttpResult>>, stop: () => Promise<void> }> {
  const child = await startLoadChild('bench/load-autocannon.ts')
  return { run: async (load) => await child.run<HttpLoad, HttpResult>(load), stop: child.stop }
}

// ---------------------------------------------------------------------------------------------
// Machine description for latest.json.

export interface MachineInfo {
  node: string
  cpus: number
  model: string
  loadavg: { start: number, end: number }
  date: string
  quick: boolean
  pinning: string
}

export function machineStart (quick: boolean): () => MachineInfo {
  const start = loadavg()[0]
  const date = new Date().toISOString()
  const cpu = cpus()
  return () => ({
    node: process.version,
    cpus: cpu.length,
    model: cpu[0]?.model ?? 'unknown',
    loadavg: { start, end: loadavg()[0] },
    date,
    quick,
    pinning: pinning.enabled ? pinning.reason : `not pinned: ${pinning.reason}`
  })
}

/**
 * Rounds for a scenario whose per-round figure scatters widely on a small shared machine (fan-out
 * CPU per delivery, vote-to-frame p99: ±10–15 % between rounds of one run): at least 5 in a full
 * run, so the median is steadier; quick mode keeps its own.
 */
export const roundsOf = (opts: BenchOptions): number => opts.quick ? opts.rounds : Math.max(opts.rounds, 5)
