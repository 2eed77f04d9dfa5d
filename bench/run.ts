// `npm run bench`: runs the bench/*.bench.ts scenarios in turn, prints each report, writes every
// row to bench/results/latest.json and regenerates bench/RESULTS.md (a table of all rows first,
// then each scenario's section). Not a test: numbers depend on the machine; each row is a ratio
// against a baseline measured side by side in the same run, which is what carries across machines.
//
//   npm run bench                          every scenario, full length; exit 1 if a target is missed
//   npm run bench -- votes-store reads     only those scenarios (file names without .bench.ts);
//                                          rows of scenarios not run are kept from latest.json
//   npm run bench -- --quick               CI smoke: about a minute for the whole bench, short runs
//                                          and small sizes, targets not enforced (exit 0 unless a
//                                          scenario fails); writes bench/results/quick/ unless --out
//   npm run bench -- --out DIR             write DIR/latest.json and DIR/RESULTS.md instead
//
// BENCH_DURATION_S, BENCH_WARMUP_S, BENCH_CONNECTIONS, BENCH_ROUNDS override the defaults;
// BENCH_PIN=0 turns core pinning off. This process pins itself to the load core (lib.LOAD_CPU);
// servers under test run on lib.SERVER_CPU.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { LOAD_CPU, machineStart, pinSelf, pinning, ROOT, rowsTable, type BenchOptions, type BenchReport, type MachineInfo, type ScenarioRow } from './lib.js'

export interface ResultRow extends ScenarioRow {
  /** The scenario file the row came from (bench/<scenario>.bench.ts). */
  scenario: string
}

export interface Section {
  scenario: string
  title: string
  ok: boolean
  date: string
  loadavg: { start: number, end: number }
  markdown: string
  error?: string
}

export interface LatestJson {
  machine: MachineInfo
  scenarios: ResultRow[]
  sections: Section[]
}

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const outAt = args.indexOf('--out')
const outArg = outAt >= 0 ? args[outAt + 1] : undefined
if (outAt >= 0 && (outArg === undefined || outArg.startsWith('--'))) throw new Error('--out needs a directory')
const only = args.filter((a, i) => !a.startsWith('--') && !(outAt >= 0 && i === outAt + 1))

const num = (name: string, def: number) => {
  const raw = process.env[name]
  return raw && /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : def
}
const opts: BenchOptions = quick
  ? { durationS: num('BENCH_DURATION_S', 1), warmupS: num('BENCH_WARMUP_S', 0), connections: num('BENCH_CONNECTIONS', 10), rounds: num('BENCH_ROUNDS', 1), quick }
  : { durationS: num('BENCH_DURATION_S', 5), warmupS: num('BENCH_WARMUP_S', 2), connections: num('BENCH_CONNECTIONS', 50), rounds: num('BENCH_ROUNDS', 3), quick }

const dir = join(ROOT, 'bench')
const available = readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).map((f) => f.replace(/\.bench\.ts$/, '')).sort()
const unknown = only.filter((name) => !available.includes(name))
if (unknown.length > 0) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}; available: ${available.join(', ')}`)
  process.exit(2)
}
const selected = available.filter((name) => only.length === 0 || only.includes(name))

const outDir = outArg !== undefined ? resolve(outArg) : quick ? join(dir, 'results', 'quick') : join(dir, 'results')
const resultsMd = outArg !== undefined || quick ? join(outDir, 'RESULTS.md') : join(dir, 'RESULTS.md')
mkdirSync(outDir, { recursive: true })
const latestPath = join(outDir, 'latest.json')

pinSelf(LOAD_CPU)
const machine = machineStart(quick)
console.log(`bench: ${selected.join(', ')}${quick ? ' (quick)' : ''}; ${pinning.enabled ? pinning.reason : `not pinned: ${pinning.reason}`}`)

const sections: Section[] = []
const rows: ResultRow[] = []
for (const scenario of selected) {
  const start = loadavg()[0]
  const date = new Date().toISOString()
  const t0 = performance.now()
  console.log(`# ${scenario} …`)
  try {
    const mod = await import(pathToFileURL(join(dir, `${scenario}.bench.ts`)).href) as { default: (o: BenchOptions) => Promise<BenchReport> }
    const report = await mod.default(opts)
    console.log(report.markdown)
    sections.push({ scenario, title: report.title, ok: report.ok, date, loadavg: { start, end: loadavg()[0] }, markdown: report.markdown })
    rows.push(...report.scenarios.map((r) => ({ ...r, scenario })))
  } catch (err) {
    const error = err instanceof Error ? (err.stack ?? err.message) : String(err)
    console.error(`${scenario} FAILED: ${error}`)
    sections.push({ scenario, title: scenario, ok: false, date, loadavg: { start, end: loadavg()[0] }, markdown: `## ${scenario}\n\nFAILED:\n\n\`\`\`\n${error}\n\`\`\`\n`, error })
  }
  console.log(`# ${scenario}: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
}

// Rows and sections of scenarios not run this time stay as they were (their own dates say when).
let previous: LatestJson | null = null
if (existsSync(latestPath)) {
  try { previous = JSON.parse(readFileSync(latestPath, 'utf8')) as LatestJson } catch {}
}
const kept = (s: { scenario?: string }) => s.scenario !== undefined && !selected.includes(s.scenario) && available.includes(s.scenario)
const allSections = [...(previous?.sections ?? []).filter(kept), ...sections].sort((a, b) => a.scenario.localeCompare(b.scenario))
const allRows = [...(previous?.scenarios ?? []).filter(kept), ...rows]
  .sort((a, b) => a.scenario.localeCompare(b.scenario) || 0)
const latest: LatestJson = { machine: machine(), scenarios: allRows, sections: allSections }
writeFileSync(latestPath, JSON.stringify(latest, null, 2) + '\n')

const m = latest.machine
writeFileSync(resultsMd, [
  '# Benchmark results',
  '',
  `Written by \`npm run bench${quick ? ' -- --quick' : ''}\`: Node ${m.node}, ${m.cpus} × ${m.model}; ${m.pinning}. ` +
    'Each row is ours / a baseline measured side by side in the same run (alternating rounds); absolute figures depend on the machine ' +
    'and whatever else it ran, the ratios are what to compare. The machine-readable copy is `bench/results/latest.json`; the method is in `docs/performance.md`.' +
    (quick ? ' **Quick run (CI smoke): short and small, targets not enforced; these figures mean little.**' : ''),
  '',
  '| scenario file | run at (UTC) | load average (1 min) start → end | result |',
  '|---|---|---|---|',
  ...allSections.map((s) => `| ${s.scenario} | ${s.date.replace('T', ' ').replace(/\.\d+Z$/, '')} | ${s.loadavg.start.toFixed(2)} → ${s.loadavg.end.toFixed(2)} | ${s.error !== undefined ? 'FAILED' : s.ok ? 'targets met' : 'target(s) missed'} |`),
  '',
  '## All rows',
  '',
  rowsTable(allRows),
  '',
  ...allSections.map((s) => s.markdown)
].join('\n'))

const failed = sections.filter((s) => s.error !== undefined)
const missed = sections.filter((s) => !s.ok && s.error === undefined)
console.log(`wrote ${latestPath} and ${resultsMd}: ${sections.length - failed.length - missed.length}/${sections.length} scenarios met their targets` +
  `${failed.length > 0 ? `, ${failed.length} FAILED (${failed.map((s) => s.scenario).join(', ')})` : ''}${quick ? ' (quick: targets not enforced)' : ''}`)
process.exitCode = failed.length > 0 ? 1 : !quick && missed.length > 0 ? 1 : 0
