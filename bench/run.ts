// `npm run bench`: runs every bench/*.bench.ts scenario in turn, prints each report and writes
// them all to bench/RESULTS.md. Not a test: numbers depend on the machine; each scenario reports
// a ratio against a baseline measured in the same run, which is what carries across machines.
// BENCH_DURATION_S, BENCH_WARMUP_S, BENCH_CONNECTIONS, BENCH_ROUNDS override the defaults;
// pass scenario names (e.g. `npm run bench -- cache-l1`) to run only those.
import { readdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT, type BenchOptions, type BenchReport } from './lib.js'

const num = (name: string, def: number) => {
  const raw = process.env[name]
  return raw && /^\d+$/.test(raw) ? Number(raw) : def
}

const opts: BenchOptions = {
  durationS: num('BENCH_DURATION_S', 5),
  warmupS: num('BENCH_WARMUP_S', 2),
  connections: num('BENCH_CONNECTIONS', 50),
  rounds: num('BENCH_ROUNDS', 3)
}

const only = process.argv.slice(2)
const dir = join(ROOT, 'bench')
const scenarios = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.bench\.ts$/, '')))
  .sort()

const loadBefore = loadavg()[0]
const reports: BenchReport[] = []
for (const file of scenarios) {
  const mod = await import(pathToFileURL(join(dir, file)).href) as { default: (o: BenchOptions) => Promise<BenchReport> }
  console.log(`# ${file} …`)
  const report = await mod.default(opts)
  console.log(report.markdown)
  reports.push(report)
}

const cpu = cpus()
writeFileSync(join(dir, 'RESULTS.md'), [
  '# Benchmark results',
  '',
  `Written by \`npm run bench\` on ${new Date().toISOString()}: Node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}.`,
  `Load average (1 min) ${loadBefore.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end. Absolute numbers depend on the machine ` +
    '(and on whatever else it was running); the ratios are what to compare, and on a busy machine server CPU per request is the steadier measure.',
  '',
  ...reports.map((r) => r.markdown)
].join('\n'))
console.log(`wrote bench/RESULTS.md (${reports.filter((r) => r.ok).length}/${reports.length} scenarios met their target)`)
process.exitCode = reports.every((r) => r.ok) ? 0 : 1
