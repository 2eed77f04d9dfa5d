// GET /logos/:id served from L1 against a bare Fastify route returning the same JSON, in one
// run. Three real servers' routes on 127.0.0.1 (each server in a child process, autocannon in
// this one), measured in interleaved rounds whose order rotates, so load from anything else on
// the machine falls on all of them alike:
//   app           GET /logos/:id on the real app (bench/app-server.ts = buildApp, as src/server.ts)
//   app-route     GET /baseline/route/:id on the same app: the same route definition (params and
//                 response schemas, ETag) returning a fixed copy instead of reading the cache
//   app-baseline  GET /baseline/logos/:id on the same app: the same JSON from a bare route (no
//                 params validation, service, cache, ETag or response schema) behind the same hooks
//   bare          GET /logos/:id on `Fastify()` with that one route and nothing else
// The target (≥ 0.8) is judged on app / app-baseline: a bare route returning the same JSON in the
// same server. app / bare is reported beside it, with the split of where the gap goes: the
// global plugins (rate limit, metrics, load shedding, CORS, websocket, request ids and logging),
// the route's own validation/serialisation/ETag, and the service + L1 read itself.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { createSigner } from 'fast-jwt'
import { median, row, startChild, startHttpLoad, type BenchOptions, type BenchReport, type ChildServer } from './lib.js'

export const title = 'GET /logos/:id from L1 vs a bare Fastify route'
const TARGET = 0.8
const SECRET = 'bench-secret-bench-secret-bench-secret'

interface CacheStats { l1: { hits: number, misses: number }, store: { reads: number } }
type Target = 'app' | 'app-route' | 'app-baseline' | 'bare'

export default async function cacheL1 (opts: BenchOptions): Promise<BenchReport> {
  const dataDir = mkdtempSync(join(tmpdir(), 'logo-sync-bench-'))
  const servers: ChildServer[] = []
  const loader = await startHttpLoad()
  try {
    // Embedded default (SQLite, in-process bus, no L2): what is measured is L1.
    const app = await startChild('bench/app-server.ts', {
      NODE_ENV: 'development',
      DATA_DIR: dataDir,
      SEED_DEMO_DATA: 'false',
      JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      LOG_PRETTY: 'false',
      RATE_LIMIT_MAX: '1000000000', // the limiter still runs on every request; it just never says no
      CACHE_DEBUG_ROUTES: 'true',
      CACHE_TTL_MS: '600000' // the run outlasts the default minute; every measured request is an L1 hit
    }, '/healthz')
    servers.push(app)
    const admin = createSigner({ key: SECRET, algorithm: 'HS256', expiresIn: 3_600_000 })({ sub: 'bench', role: 'admin' })
    const created = await fetch(`${app.url}/logos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Benchmark logo', imageUrl: 'https://example.com/logo.png', description: 'Served from the in-process cache', author: 'bench' })
    })
    if (created.status !== 201) throw new Error(`could not create the logo: ${created.status} ${await created.text()}`)
    const { _id: id } = await created.json() as { _id: string }
    const path = `/logos/${id}`
    const body = await (await fetch(app.url + path)).json()
    await (await fetch(`${app.url}/baseline${path}`, { method: 'POST' })).arrayBuffer()
    const bare = await startChild('bench/bare-server.ts', { BENCH_BODY: JSON.stringify(body) }, path)
    servers.push(bare)

    const urls: Record<Target, string> = { app: app.url + path, 'app-route': `${app.url}/baseline/route/${id}`, 'app-baseline': `${app.url}/baseline${path}`, bare: bare.url + path }
    const cpuUrls: Record<Target, string> = { app: `${app.url}/baseline/cpu`, 'app-route': `${app.url}/baseline/cpu`, 'app-baseline': `${app.url}/baseline/cpu`, bare: `${bare.url}/_cpu` }
    const cpuOf = async (target: Target) => {
      const { user, system } = await (await fetch(cpuUrls[target])).json() as { user: number, system: number }
      return user + system
    }
    for (const url of Object.values(urls)) {
      if (!isDeepStrictEqual(body, await (await fetch(url)).json())) throw new Error(`${url} does not return the same JSON`)
    }

    const stats = async () => await (await fetch(`${app.url}/_debug/cache`)).json() as CacheStats
    const load = async (url: string, duration: number) => await loader.run({ url, connections: opts.connections, duration })
    const order: Target[] = ['bare', 'app', 'app-route', 'app-baseline']
    if (opts.warmupS > 0) for (const target of order) await load(urls[target], opts.warmupS)
    let saturated = 0

    const before = await stats()
    const rows: string[] = []
    const perRound: Record<Target, number>[] = []
    const totals: Record<Target, { requests: number, seconds: number, bad: number, cpuUs: number }> = {
      app: { requests: 0, seconds: 0, bad: 0, cpuUs: 0 },
      'app-route': { requests: 0, seconds: 0, bad: 0, cpuUs: 0 },
      'app-baseline': { requests: 0, seconds: 0, bad: 0, cpuUs: 0 },
      bare: { requests: 0, seconds: 0, bad: 0, cpuUs: 0 }
    }
    for (let round = 0; round < opts.rounds; round++) {
      const rps = {} as Record<Target, number>
      for (let i = 0; i < order.length; i++) {
        const target = order[(i + round) % order.length]
        const cpu0 = await cpuOf(target)
        const run = await load(urls[target], opts.durationS)
        const r = run.output
        const cpuUs = await cpuOf(target) - cpu0
        totals[target].cpuUs += cpuUs
        if (run.saturated) saturated++
        rps[target] = r.rps
        totals[target].requests += r.requests
        totals[target].seconds += r.seconds
        totals[target].bad += r.bad
        rows.push(`| ${round + 1} | ${target} | ${Math.round(rps[target])} | ${(cpuUs / r.requests).toFixed(1)} | ${r.latencyP50} | ${r.latencyP99} | ${r.bad} | ${(run.cpuShare * 100).toFixed(0)} % |`)
      }
      perRound.push(rps)
    }
    const after = await stats()

    const overall = (t: Target) => totals[t].requests / totals[t].seconds
    const cpuPerReq = (t: Target) => totals[t].cpuUs / totals[t].requests
    const cachePath = median(perRound.map((r) => r.app / r['app-baseline']))
    const vsBare = median(perRound.map((r) => r.app / r.bare))
    const stackVsBare = median(perRound.map((r) => r['app-baseline'] / r.bare))
    const routeVsBaseline = median(perRound.map((r) => r['app-route'] / r['app-baseline']))
    const cacheVsRoute = median(perRound.map((r) => r.app / r['app-route']))
    const storeReads = after.store.reads - before.store.reads
    const l1Hits = after.l1.hits - before.l1.hits
    const clean = Object.values(totals).every((t) => t.bad === 0)
    const ok = cachePath >= TARGET && storeReads === 0 && clean
    const notes = [clean ? '' : 'errors or non-2xx', storeReads === 0 ? '' : `${storeReads} store reads`]
    const scenarios = [
      row('cache-l1 GET /logos/:id from L1 vs bare route in the same app', overall('app'), overall('app-baseline'), { atLeast: TARGET, unit: 'req/s', saturated: saturated > 0, note: notes }),
      row('cache-l1 GET /logos/:id from L1 vs bare Fastify()', overall('app'), overall('bare'), { unit: 'req/s', saturated: saturated > 0, note: notes }),
      row('cache-l1 server CPU per request, app vs bare Fastify()', cpuPerReq('app'), cpuPerReq('bare'), { unit: 'µs/req' })
    ]
    scenarios[0].met = scenarios[0].met && storeReads === 0 && clean
    const markdown = [
      `## ${title}`,
      '',
      '| comparison (median of per-round ratios) | ratio | target |',
      '|---|---|---|',
      `| \`GET /logos/:id\` from L1 / bare route in the same app | **${cachePath.toFixed(3)}** | ≥ ${TARGET}: ${cachePath >= TARGET ? 'met' : 'NOT met'} |`,
      `| \`GET /logos/:id\` from L1 / bare \`Fastify()\` server | **${vsBare.toFixed(3)}** | ≥ ${TARGET}: ${vsBare >= TARGET ? 'met' : 'not met'} (see the split below) |`,
      `| split 1: bare route in the same app / bare \`Fastify()\` (the app's global plugins) | ${stackVsBare.toFixed(3)} | — |`,
      `| split 2: same route definition returning a constant / bare route in the same app (params validation, response schema, ETag) | ${routeVsBaseline.toFixed(3)} | — |`,
      `| split 3: \`GET /logos/:id\` from L1 / the same route returning a constant (the service and the L1 read) | ${cacheVsRoute.toFixed(3)} | — |`,
      '',
      `Server CPU per request (steadier than req/s when the machine is shared): app ${cpuPerReq('app').toFixed(1)} µs, ` +
        `app-route ${cpuPerReq('app-route').toFixed(1)} µs, app-baseline ${cpuPerReq('app-baseline').toFixed(1)} µs, bare ${cpuPerReq('bare').toFixed(1)} µs. ` +
        `The service + L1 read cost ${(cpuPerReq('app') - cpuPerReq('app-route')).toFixed(1)} µs per request, the route's validation, schema and ETag ` +
        `${(cpuPerReq('app-route') - cpuPerReq('app-baseline')).toFixed(1)} µs, the global plugins ${(cpuPerReq('app-baseline') - cpuPerReq('bare')).toFixed(1)} µs. ` +
        `As throughput ratios at full CPU: app / app-baseline ${(cpuPerReq('app-baseline') / cpuPerReq('app')).toFixed(3)}, app / bare ${(cpuPerReq('bare') / cpuPerReq('app')).toFixed(3)}.`,
      '',
      `Overall req/s: app ${Math.round(overall('app'))}, app-route ${Math.round(overall('app-route'))}, app-baseline ${Math.round(overall('app-baseline'))}, bare ${Math.round(overall('bare'))}. ` +
        `While measured the app answered from L1: ${l1Hits} L1 hits, ${storeReads} store reads; ${clean ? 'no' : 'SOME'} errors or non-2xx.`,
      '',
      `${opts.rounds} rounds × ${opts.durationS} s per target (order rotating each round) after ${opts.warmupS} s warm-up each; ` +
        `${opts.connections} connections, no pipelining; autocannon in a process of its own on the load core, each server in a process of its own on the server core` +
        `${saturated > 0 ? `; **the load generator was saturated in ${saturated} run(s)** (≥ 90 % of its core)` : ''}.`,
      'app = the real app (`buildApp`, embedded mode, LOG_LEVEL=warn, CACHE_TTL_MS=600000, every plugin and hook); app-route = `GET /baseline/route/:id` on that ' +
        'same process, the same route definition as `GET /logos/:id` returning a constant; app-baseline = `GET /baseline/logos/:id` on that ' +
        'same process, returning the same JSON with no validation, service, cache, ETag or response schema; ' +
        'bare = `Fastify()` with one route returning the same object (see `bench/app-server.ts`, `bench/bare-server.ts`).',
      '',
      '| round | target | req/s | server CPU µs/req | p50 ms | p99 ms | errors/non-2xx | load generator CPU |',
      '|---|---|---|---|---|---|---|---|',
      ...rows,
      ''
    ].join('\n')
    return { title, ok, markdown, scenarios }
  } finally {
    await loader.stop()
    await Promise.all(servers.map((s) => s.stop()))
    rmSync(dataDir, { recursive: true, force: true })
  }
}
