// Reads, embedded and scaled, vs a bare Fastify route, side by side in one run (issue 14,
// scenario 4):
//   embedded  the app in embedded mode (SQLite, in-process bus, L1 cache)
//   scaled    the app in scaled mode (PostgreSQL + Redis: L1 in front of the Redis L2, the Redis
//             bus, rate limits leased from Redis)
//   bare      `Fastify()` with two routes returning the same JSON (bench/bare-server.ts)
// for `GET /logos/:id` (one logo) and `GET /logos` (the whole list of LOGOS logos). autocannon in a
// process of its own on the load core; the servers on the server core; rounds alternate all six
// (server, path) targets. The measured requests must all be cache hits: the store is not read.
// Target: scaled cached GET /logos/:id ≥ 0.8× embedded.
import { isDeepStrictEqual } from 'node:util'
import { createLogos, startApp, type AppServer } from './apps.js'
import { alternate, row, startChild, startHttpLoad, type BenchOptions, type BenchReport, type ChildServer, type HttpResult, type LoadRun } from './lib.js'

export const title = 'Reads: GET /logos/:id and GET /logos, embedded and scaled vs a bare Fastify route'
const TARGET = 0.8

type Server = 'embedded' | 'scaled' | 'bare'
type Path = 'one' | 'list'
type Target = `${Server} ${Path}`
const SERVERS: Server[] = ['embedded', 'scaled', 'bare']
const TARGETS: Target[] = SERVERS.flatMap((s) => (['one', 'list'] as const).map((p) => `${s} ${p}` as Target))
interface CacheStats { store: { reads: number }, l1: { hits: number } }

export default async function reads (opts: BenchOptions): Promise<BenchReport> {
  const logos = opts.quick ? 5 : 20
  const apps: AppServer[] = []
  let bare: ChildServer | null = null
  const loader = await startHttpLoad()
  try {
    const started = await Promise.allSettled((['embedded', 'scaled'] as const).map(async (m) => await startApp(m)))
    for (const s of started) if (s.status === 'fulfilled') apps.push(s.value)
    for (const s of started) if (s.status === 'rejected') throw s.reason
    const app = (m: 'embedded' | 'scaled') => apps.find((a) => a.mode === m)!
    const ids = { embedded: await createLogos(app('embedded').url, logos), scaled: await createLogos(app('scaled').url, logos) }
    // The hot logo: the middle one; the same JSON shape in both modes (ids and dates differ).
    const hot = { embedded: ids.embedded[logos >> 1], scaled: ids.scaled[logos >> 1] }
    const one = await (await fetch(`${app('embedded').url}/logos/${hot.embedded}`)).json()
    const list = await (await fetch(`${app('embedded').url}/logos`)).json()
    bare = await startChild('bench/bare-server.ts', { BENCH_BODY: JSON.stringify(one), BENCH_LIST_BODY: JSON.stringify(list) }, '/logos')
    const base = { embedded: app('embedded').url, scaled: app('scaled').url, bare: bare.url }
    const urls = Object.fromEntries(TARGETS.map((t) => {
      const [s, p] = t.split(' ') as [Server, Path]
      return [t, p === 'list' ? `${base[s]}/logos` : `${base[s]}/logos/${s === 'bare' ? hot.embedded : hot[s]}`]
    })) as Record<Target, string>
    if (!isDeepStrictEqual(await (await fetch(urls['bare one'])).json(), one) || !isDeepStrictEqual(await (await fetch(urls['bare list'])).json(), list)) throw new Error('the bare server does not return the same JSON')
    const scaledList = await (await fetch(urls['scaled list'])).json() as { items: unknown[] }
    if (scaledList.items.length !== logos) throw new Error(`scaled GET /logos has ${scaledList.items.length} logos, not ${logos}`)

    const cpu: Record<Server, () => number> = { embedded: app('embedded').cpuUs, scaled: app('scaled').cpuUs, bare: bare.cpuUs }
    const load = async (t: Target, seconds: number) => {
      const s = t.split(' ')[0] as Server
      const cpu0 = cpu[s]()
      const run = await loader.run({ url: urls[t], connections: opts.connections, duration: seconds })
      return { run, serverCpuUs: cpu[s]() - cpu0 }
    }
    if (opts.warmupS > 0) for (const t of TARGETS) await load(t, opts.warmupS)
    const stats = async () => Object.fromEntries(await Promise.all((['embedded', 'scaled'] as const).map(async (m) => [m, await (await fetch(`${base[m]}/_debug/cache`)).json() as CacheStats]))) as Record<'embedded' | 'scaled', CacheStats>
    const before = await stats()
    const rounds = await alternate(opts.rounds, TARGETS, async (t) => await load(t, opts.durationS))
    const after = await stats()

    const sum = (t: Target, f: (r: LoadRun<HttpResult>) => number) => rounds.reduce((a, r) => a + f(r[t].run), 0)
    const rps = (t: Target) => sum(t, (r) => r.output.requests) / sum(t, (r) => r.output.seconds)
    const cpuPerReq = (t: Target) => rounds.reduce((a, r) => a + r[t].serverCpuUs, 0) / sum(t, (r) => r.output.requests)
    const bad = TARGETS.reduce((a, t) => a + sum(t, (r) => r.output.bad), 0)
    const saturatedIn = (...ts: Target[]) => rounds.some((r) => ts.some((t) => r[t].run.saturated))
    const storeReads = { embedded: after.embedded.store.reads - before.embedded.store.reads, scaled: after.scaled.store.reads - before.scaled.store.reads }
    const notes = [bad === 0 ? '' : `${bad} errors or non-2xx`, storeReads.embedded + storeReads.scaled === 0 ? '' : `store read ${storeReads.embedded} (embedded) / ${storeReads.scaled} (scaled) times`]

    const scenarios = [
      row('reads GET /logos/:id scaled (cached) vs embedded', rps('scaled one'), rps('embedded one'), { atLeast: TARGET, unit: 'req/s', saturated: saturatedIn('scaled one', 'embedded one'), note: notes }),
      row('reads GET /logos/:id embedded vs bare Fastify', rps('embedded one'), rps('bare one'), { unit: 'req/s', saturated: saturatedIn('embedded one', 'bare one') }),
      row('reads GET /logos/:id scaled vs bare Fastify', rps('scaled one'), rps('bare one'), { unit: 'req/s', saturated: saturatedIn('scaled one', 'bare one') }),
      row(`reads GET /logos (${logos} logos) scaled vs embedded`, rps('scaled list'), rps('embedded list'), { unit: 'req/s', saturated: saturatedIn('scaled list', 'embedded list') }),
      row(`reads GET /logos (${logos} logos) embedded vs bare Fastify`, rps('embedded list'), rps('bare list'), { unit: 'req/s', saturated: saturatedIn('embedded list', 'bare list') }),
      row('reads GET /logos/:id server CPU per request, scaled vs embedded', cpuPerReq('scaled one'), cpuPerReq('embedded one'), { unit: 'µs/req' })
    ]
    scenarios[0].met = scenarios[0].met && bad === 0 && storeReads.scaled === 0 && storeReads.embedded === 0
    const perRound = rounds.map((r) => r['scaled one'].run.output.rps / r['embedded one'].run.output.rps)

    const markdown = [
      `## ${title}`,
      '',
      '| target | req/s | server CPU µs/req | p50 / p99 ms (per round) | load generator CPU (max) |',
      '|---|---|---|---|---|',
      ...TARGETS.map((t) => `| ${t.replace(' one', ' `GET /logos/:id`').replace(' list', ` \`GET /logos\` (${logos})`)} | **${rps(t).toFixed(0)}** | ${cpuPerReq(t).toFixed(1)} | ` +
        `${rounds.map((r) => `${r[t].run.output.latencyP50} / ${r[t].run.output.latencyP99}`).join(', ')} | ${(Math.max(...rounds.map((r) => r[t].run.cpuShare)) * 100).toFixed(0)} % |`),
      '',
      `Scaled cached \`GET /logos/:id\` / embedded: **${rps('scaled one') / rps('embedded one') > 0 ? (rps('scaled one') / rps('embedded one')).toFixed(3) : 'n/a'}** ` +
        `(target ≥ ${TARGET}: ${scenarios[0].met ? 'met' : '**not met**'}; per round ${perRound.map((x) => x.toFixed(3)).join(', ')}). ` +
        `While measured the store was read ${storeReads.embedded} times (embedded) and ${storeReads.scaled} times (scaled); ${bad === 0 ? 'no' : bad} errors or non-2xx.`,
      '',
      `${opts.connections} connections, no pipelining; ${logos} logos; ${opts.rounds} rounds × ${opts.durationS} s per target, order rotating, after ${opts.warmupS} s warm-up each. ` +
        'Rate limits on in both modes (limits raised so they never refuse; scaled leases its budget from Redis). Server CPU is the app process only.',
      ''
    ].join('\n')
    return { title, ok: scenarios[0].met, markdown, scenarios }
  } finally {
    await loader.stop()
    await bare?.stop()
    for (const a of apps) { await a.stop(); await a.dispose() }
  }
}
