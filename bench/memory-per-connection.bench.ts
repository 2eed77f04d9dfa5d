// Memory per idle connection: ours (scaled mode) against a bare `ws` server, at a few sizes, side
// by side in alternating rounds. Per run: the server's memory after two forced GCs, then N idle
// connections (ours: each welcomed, no token, no subscription; bare: open), the same again, and
// the difference per connection — RSS and V8 heap (heapUsed + external, the socket's buffers live
// outside the heap). Then the connections close and the next run starts from the same server.
// A second plan, reported only: the realistic mix of connections-10k (list, 3 logos, their
// counts, a private channel with a token each).
import type { BenchOptions, BenchReport, ScenarioRow } from './lib.js'
import { alternate, median, row, sleep } from './lib.js'
import { cleanUp, createLogos, oursEnv, scaledSpace, Shards, startTarget, type Target, type TargetServer } from './realtime/common.js'
import type { Plan } from './realtime/subscribers.js'

export const title = 'Memory per idle connection: ours vs bare `ws`'

const TARGETS: Target[] = ['ours', 'bare']

interface Run { rssKB: number, heapKB: number, externalKB: number }

export default async function memoryPerConnection (opts: BenchOptions): Promise<BenchReport> {
  const sizes = opts.quick ? [200] : (process.env.BENCH_MEMORY_SIZES ?? '1000,10000').split(',').map(Number)
  const space = await scaledSpace('memory')
  const servers = new Map<Target, TargetServer>()
  let shards: Shards | null = null
  const results: Array<{ size: number, plan: string, rounds: Array<Record<Target, Run>> }> = []
  try {
    const started = await Promise.allSettled([
      startTarget('ours', oursEnv(space)),
      startTarget('bare', { BENCH_PREFIX: space.prefix })
    ])
    for (const s of started) if (s.status === 'fulfilled') servers.set(s.value.target, s.value)
    for (const s of started) if (s.status === 'rejected') throw s.reason
    const logos = await createLogos(servers.get('ours')!, 20)
    shards = await Shards.start(opts.quick ? 1 : 2)
    const sh = shards
    const plans: Array<[string, Plan]> = [['idle', { kind: 'channels', channels: [] }]]
    if (!opts.quick) plans.push(['mix', { kind: 'mix', logos, perConn: 3 }])
    let offset = 0
    for (const size of sizes) {
      for (const [planName, plan] of plans) {
        const rounds = await alternate(opts.rounds, TARGETS, async (target): Promise<Run> => {
          const server = servers.get(target)!
          const before = await server.memory()
          const got = await sh.open(target, target, server.wsUrl, size, plan, offset)
          offset += size
          if (got.opened !== size) throw new Error(`${target}: opened ${got.opened} of ${size}: ${got.errors.join('; ')}`)
          await sleep(opts.quick ? 100 : 500)
          const after = await server.memory()
          await sh.close(target)
          await sleep(opts.quick ? 200 : 1000) // the server sees every close before the next run's "before"
          return {
            rssKB: (after.rss - before.rss) / size / 1024,
            heapKB: (after.heapUsed - before.heapUsed) / size / 1024,
            externalKB: (after.external - before.external) / size / 1024
          }
        })
        results.push({ size, plan: planName, rounds })
      }
    }
  } finally {
    await cleanUp([() => shards?.stop(), ...[...servers.values()].map((s) => () => s.stop()), () => space.drop()])
  }

  const rows: ScenarioRow[] = []
  const lines = [`## ${title}`, '', '| connections | plan | round | server | RSS KB/conn | heapUsed KB/conn | external KB/conn |', '|---|---|---|---|---|---|---|']
  for (const { size, plan, rounds } of results) {
    rounds.forEach((r, i) => { for (const t of TARGETS) lines.push(`| ${size} | ${plan} | ${i + 1} | ${t} | ${r[t].rssKB.toFixed(2)} | ${r[t].heapKB.toFixed(2)} | ${r[t].externalKB.toFixed(2)} |`) })
    const med = (t: Target, k: keyof Run) => median(rounds.map((r) => r[t][k]))
    const total = (t: Target) => median(rounds.map((r) => r[t].heapKB + r[t].externalKB))
    const enforce = plan === 'idle'
    rows.push(
      row(`memory ${size} ${plan} connections: RSS per connection vs bare ws`, med('ours', 'rssKB'), med('bare', 'rssKB'), { ...(enforce ? { atMost: 1.5 } : {}), unit: 'KB' }),
      row(`memory ${size} ${plan} connections: heap + external per connection vs bare ws`, total('ours'), total('bare'), { ...(enforce ? { atMost: 1.5 } : {}), unit: 'KB' })
    )
  }
  lines.push('', 'Deltas after two forced GCs (node --expose-gc) in the server, before the connections opened and 0.5 s after the last one was answered; RSS includes what the allocator keeps and hands back between runs, so it is the noisier of the two; the heap is what the code holds per connection. Ratios are of the medians; the ≤ 1.5 target applies to idle connections, on both.', '')
  return { title, ok: rows.every((r) => r.met), markdown: lines.join('\n'), scenarios: rows }
}
