// Where a request path's CPU goes: starts the app (embedded or scaled) with --cpu-prof on the
// server core, puts one kind of load on it from the load core for a few seconds, stops it and
// prints the self time by package / file and the top functions. A tool, not a scenario:
//   npx tsx bench/profile.ts votes scaled [seconds]
//   npx tsx bench/profile.ts one|list embedded [seconds]
// The .cpuprofile stays in the printed directory (open it in Chrome DevTools).
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { createLogos, startApp, SECRET, type Mode } from './apps.js'
import { ROOT, startHttpLoad } from './lib.js'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
interface Profile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[] }

const [kind = 'votes', mode = 'scaled', secondsArg = '8'] = process.argv.slice(2)
if (!['votes', 'one', 'list'].includes(kind) || !['embedded', 'scaled'].includes(mode)) {
  console.error('usage: npx tsx bench/profile.ts votes|one|list embedded|scaled [seconds]')
  process.exit(2)
}
const dir = mkdtempSync(join(tmpdir(), 'logo-sync-prof-'))
const app = await startApp(mode as Mode, {}, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
const loader = await startHttpLoad()
try {
  const [logo] = await createLogos(app.url, 5)
  const url = kind === 'votes' ? `${app.url}/logos/${logo}/votes` : kind === 'one' ? `${app.url}/logos/${logo}` : `${app.url}/logos`
  const run = await loader.run({ url, connections: 20, duration: Number(secondsArg), ...(kind === 'votes' ? { method: 'POST' as const, distinctUsers: { secret: SECRET, subPrefix: 'prof-' } } : {}) })
  console.log(`${kind} on ${mode}: ${run.output.rps.toFixed(0)} req/s, ${run.output.bad} bad, load generator at ${(run.cpuShare * 100).toFixed(0)} %`)
} finally {
  await loader.stop()
  await app.stop()
  await app.dispose()
}

const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
if (file === undefined) throw new Error(`no profile written in ${dir}`)
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile
const total = profile.samples.length
const where = (url: string) => {
  if (url === '') return '(native / V8)'
  if (url.startsWith('node:')) return 'node core'
  const path = url.startsWith('file://') ? relative(ROOT, new URL(url).pathname) : url
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)
  return m ? m[1] : path
}
const byWhere = new Map<string, number>()
const byFn = new Map<string, number>()
for (const n of profile.nodes) {
  const hits = n.hitCount ?? 0
  if (hits === 0) continue
  const w = n.callFrame.functionName === '(garbage collector)' ? '(garbage collector)' : n.callFrame.functionName === '(idle)' ? '(idle)' : where(n.callFrame.url)
  byWhere.set(w, (byWhere.get(w) ?? 0) + hits)
  const f = `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
  byFn.set(f, (byFn.get(f) ?? 0) + hits)
}
const pct = (x: number) => `${(100 * x / total).toFixed(1).padStart(5)} %`
console.log(`\nprofile: ${join(dir, file)} (${total} samples)\n\nself time by package / file:`)
for (const [w, hits] of [...byWhere].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${pct(hits)}  ${w}`)
console.log('\ntop functions (self):')
for (const [f, hits] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${pct(hits)}  ${f}`)
