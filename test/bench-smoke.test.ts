// CI smoke for `npm run bench`: the quick mode of two scenarios (one on the Store port with its
// load child on PostgreSQL and SQLite, one on the buses over PostgreSQL and Redis) runs to the
// end, writes latest.json with the documented shape and rows of finite numbers, and regenerates
// RESULTS.md with every row. No timing is asserted: figures on a shared machine mean nothing here.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT, tempDir } from './helper.js'

const SCENARIOS = ['bus-throughput', 'votes-store']

function bench (args: string[], timeoutMs: number): Promise<{ code: number | null, out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/run.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, BENCH_DURATION_S: '0.5' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }) })
  })
}

t.test('npm run bench -- --quick writes latest.json and RESULTS.md', { timeout: 150_000 }, async (t) => {
  const out = tempDir(t, 'logo-sync-bench-smoke-')
  const started = Date.now()
  const { code, out: log } = await bench(['--quick', '--out', out, ...SCENARIOS], 120_000)
  t.equal(code, 0, 'the quick bench exits 0 (quick: targets not enforced, only failures count)')
  if (code !== 0) t.comment(log.slice(-4000))
  t.comment(`quick bench of ${SCENARIOS.join(', ')} took ${((Date.now() - started) / 1000).toFixed(1)} s`)

  const latest = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as {
    machine: Record<string, unknown> & { loadavg: { start: number, end: number } }
    scenarios: Array<Record<string, unknown>>
    sections: Array<Record<string, unknown>>
  }
  t.match(latest.machine, { node: process.version, cpus: Number, model: String, date: String, quick: true, pinning: String })
  t.ok(Number.isFinite(latest.machine.loadavg.start) && Number.isFinite(latest.machine.loadavg.end), 'load average at the start and end')
  t.same(latest.sections.map((s) => s.scenario).sort(), SCENARIOS, 'one section per scenario run, none other')
  for (const s of latest.sections) t.equal(s.error, undefined, `${String(s.scenario)} did not fail`)

  t.same([...new Set(latest.scenarios.map((r) => r.scenario))].sort(), SCENARIOS, 'rows from every scenario run')
  const names = latest.scenarios.map((r) => r.name)
  t.equal(new Set(names).size, names.length, 'row names are unique')
  t.ok(names.includes('votes-store postgres group commit vs naive loop'), 'the Store-port row is there')
  for (const r of latest.scenarios) {
    t.match(r, { name: String, target: String, met: Boolean }, `${String(r.name)}: shape`)
    for (const k of ['ours', 'baseline', 'ratio'] as const) {
      t.ok(typeof r[k] === 'number' && Number.isFinite(r[k]) && (r[k] as number) >= 0, `${String(r.name)}: ${k} is a finite number (${String(r[k])})`)
    }
    t.ok(Math.abs((r.ratio as number) - (r.ours as number) / (r.baseline as number)) < 1e-9, `${String(r.name)}: ratio = ours / baseline`)
    if (r.note !== undefined) t.type(r.note, 'string')
  }
  const votes = latest.scenarios.find((r) => r.name === 'votes-store postgres group commit vs naive loop')!
  t.notMatch(String(votes.note ?? ''), /NOT EXACT|errors/, 'the vote counts were exact and no vote failed')

  const md = readFileSync(join(out, 'RESULTS.md'), 'utf8')
  t.match(md, /Quick run/, 'RESULTS.md says it is a quick run')
  const table = md.slice(md.indexOf('## All rows'))
  for (const name of names) t.ok(table.includes(`| ${name} |`), `RESULTS.md's table lists ${name}`)
})

t.test('an unknown scenario name is refused before anything runs', async (t) => {
  const { code, out } = await bench(['--quick', '--out', tempDir(t, 'logo-sync-bench-smoke-'), 'no-such-scenario'], 60_000)
  t.equal(code, 2)
  t.match(out, /unknown scenario\(s\): no-such-scenario; available: .*votes-store/)
})
