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
import autocannon from 'autocannon'
import { createSigner } from 'fast-jwt'
import { startChild, type BenchOptions, type BenchReport, type ChildServer } from './lib.js'

export const title = 'GET /logos/:id from L1 vs a bare Fastify route'
const TARGET = 0.8
const SECRET = 'bench-secret-bench-secret-bench-secret'

interface CacheStats { l1: { hits: number, misses: number }, store: { reads: number } }
type Target = 'app' | 'app-route' | 'app-baseline' | 'bare'

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

export default async function cacheL1 (opts: BenchOptions): Promise<BenchReport> {
  const dataDir = mkdtempSync(join(tmpdir(), 'logo-sync-bench-'))
  const servers: ChildServer[] = []
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
    const load = (url: string, duration: number) => autocannon({ url, connections: opts.connections, pipelining: 1, duration })
    const order: Target[] = ['bare', 'app', 'app-route', 'app-baseline']
    for (const target of order) await load(urls[target], opts.warmupS)

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
        const r = await load(urls[target], opts.durationS)
        const cpuUs = await cpuOf(target) - cpu0
        totals[target].cpuUs += cpuUs
        const bad = r.non2xx + r.errors + r.timeouts
        rps[target] = r.requests.total / r.duration
        totals[target].requests += r.requests.total
        totals[target].seconds += r.duration
        totals[target].bad += bad
        rows.push(`| ${round + 1} | ${target} | ${Math.round(rps[target])} | ${(cpuUs / r.requests.total).toFixed(1)} | ${r.latency.p50} | ${r.latency.p99} | ${bad} |`)
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
        `${opts.connections} connections, no pipelining; autocannon in the bench process, each server in a process of its own.`,
      'app = the real app (`buildApp`, embedded mode, LOG_LEVEL=warn, CACHE_TTL_MS=600000, every plugin and hook); app-route = `GET /baseline/route/:id` on that ' +
        'same process, the same route definition as `GET /logos/:id` returning a constant; app-baseline = `GET /baseline/logos/:id` on that ' +
        'same process, returning the same JSON with no validation, service, cache, ETag or response schema; ' +
        'bare = `Fastify()` with one route returning the same object (see `bench/app-server.ts`, `bench/bare-server.ts`).',
      '',
      '| round | target | req/s | server CPU µs/req | p50 ms | p99 ms | errors/non-2xx |',
      '|---|---|---|---|---|---|---|',
      ...rows,
      ''
    ].join('\n')
    return { title, ok, markdown }
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
    rmSync(dataDir, { recursive: true, force: true })
  }
}
