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
//   npm run bench -- --merge FILE [--render]
//                                          also take scenarios from another latest.json (e.g. a run
//                                          of other scenarios made elsewhere): for each scenario the
//                                          newest section wins; --render runs nothing, only merges
//                                          and rewrites latest.json and RESULTS.md
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
  /** Measured in quick mode (CI smoke): the figures mean little. */
  quick: boolean
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
const renderOnly = args.includes('--render')
const valued = new Set<number>()
const valuesOf = (flag: string) => args.flatMap((a, i) => {
  if (a !== flag) return []
  const v = args[i + 1]
  if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`)
  valued.add(i + 1)
  return [v]
})
const outArg = valuesOf('--out').at(-1)
const mergeFiles = valuesOf('--merge').map((f) => resolve(f))
const only = args.filter((a, i) => !a.startsWith('--') && !valued.has(i))

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
const selected = renderOnly ? [] : available.filter((name) => only.length === 0 || only.includes(name))

const outDir = outArg !== undefined ? resolve(outArg) : quick ? join(dir, 'results', 'quick') : join(dir, 'results')
const resultsMd = outArg !== undefined || quick ? join(outDir, 'RESULTS.md') : join(dir, 'RESULTS.md')
mkdirSync(outDir, { recursive: true })
const latestPath = join(outDir, 'latest.json')

pinSelf(LOAD_CPU)
const machine = machineStart(quick)
console.log(`bench: ${selected.join(', ')}${quick ? ' (quick)' : ''}; ${pinning.enabled ? pinning.reason : `not pinned: ${pinning.reason}`}`)

/** One scenario: its section for RESULTS.md and its rows (none when it failed). */
async function runScenario (scenario: string): Promise<{ section: Section, rows: ResultRow[] }> {
  const start = loadavg()[0]
  const date = new Date().toISOString()
  const t0 = performance.now()
  console.log(`# ${scenario} …`)
  try {
    const mod = await import(pathToFileURL(join(dir, `${scenario}.bench.ts`)).href) as { default: (o: BenchOptions) => Promise<BenchReport> }
    const report = await mod.default(opts)
    console.log(report.markdown)
    return {
      section: { scenario, title: report.title, ok: report.ok, date, quick, loadavg: { start, end: loadavg()[0] }, markdown: report.markdown },
      rows: report.scenarios.map((r) => ({ ...r, scenario }))
    }
  } catch (err) {
    const error = err instanceof Error ? (err.stack ?? err.message) : String(err)
    console.error(`${scenario} FAILED: ${error}`)
    return { section: { scenario, title: scenario, ok: false, date, quick, loadavg: { start, end: loadavg()[0] }, markdown: `## ${scenario}\n\nFAILED:\n\n\`\`\`\n${error}\n\`\`\`\n`, error }, rows: [] }
  } finally {
    console.log(`# ${scenario}: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  }
}

// Measured runs go one scenario at a time (each owns the machine). A quick run is a smoke test
// whose figures mean little, and most of its time is servers booting: two scenarios at a time.
const results: { section: Section, rows: ResultRow[] }[] = new Array(selected.length)
let next = 0
await Promise.all(Array.from({ length: quick ? 2 : 1 }, async () => {
  while (next < selected.length) {
    const i = next++
    results[i] = await runScenario(selected[i]!)
  }
}))
const sections: Section[] = results.map((r) => r.section)
const rows: ResultRow[] = results.flatMap((r) => r.rows)

// Scenarios not run this time keep their rows and section from the previous latest.json (and
// from --merge files: for each scenario the newest section wins); their own dates say when.
const sources: LatestJson[] = []
for (const file of [latestPath, ...mergeFiles]) {
  if (!existsSync(file)) {
    if (file !== latestPath) throw new Error(`--merge ${file}: no such file`)
    continue
  }
  try { sources.push(JSON.parse(readFileSync(file, 'utf8')) as LatestJson) } catch (err) {
    if (file !== latestPath) throw err
  }
}
const newest = new Map<string, { section: Section, rows: ResultRow[] }>()
for (const src of sources) {
  for (const section of src.sections ?? []) {
    if (selected.includes(section.scenario) || !available.includes(section.scenario)) continue
    const have = newest.get(section.scenario)
    if (have !== undefined && have.section.date >= section.date) continue
    newest.set(section.scenario, { section, rows: (src.scenarios ?? []).filter((r) => r.scenario === section.scenario) })
  }
}
const allSections = [...[...newest.values()].map((k) => k.section), ...sections].sort((a, b) => a.scenario.localeCompare(b.scenario))
const order = new Map(allSections.map((s, i) => [s.scenario, i]))
const allRows = [...[...newest.values()].flatMap((k) => k.rows), ...rows].sort((a, b) => order.get(a.scenario)! - order.get(b.scenario)!)
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
  ...allSections.map((s) => `| ${s.scenario} | ${s.date.replace('T', ' ').replace(/\.\d+Z$/, '')} | ${s.loadavg.start.toFixed(2)} → ${s.loadavg.end.toFixed(2)} | ${s.error !== undefined ? 'FAILED' : s.ok ? 'targets met' : 'target(s) missed'}${s.quick ? ' (quick run)' : ''} |`),
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
