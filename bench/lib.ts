// Shared by the benchmark scenarios: options, report shape, child servers on loopback.
import { spawn, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

export interface BenchOptions {
  /** Seconds per measured run. */
  durationS: number
  /** Seconds of unmeasured load per target before the first measured run. */
  warmupS: number
  connections: number
  /** Measured runs per target, interleaved (A B A B …) so drift hits both alike. */
  rounds: number
}

export interface BenchReport {
  title: string
  /** Whether the scenario met its target. */
  ok: boolean
  /** A markdown section for bench/RESULTS.md. */
  markdown: string
}

import { freePort } from '../test/helper.js'

export { freePort }

export interface ChildServer {
  url: string
  child: ChildProcess
  output: () => string
  stop: () => Promise<void>
}

/** Runs a TypeScript entry point (through tsx) as a child process and waits until `probePath` answers. */
export async function startChild (entry: string, env: Record<string, string>, probePath: string): Promise<ChildServer> {
  const port = await freePort()
  let out = ''
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, entry)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout!.on('data', (d) => { out += d })
  child.stderr!.on('data', (d) => { out += d })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
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
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { url, child, output: () => out, stop }
}
