// Dev probe (not a scenario): heap snapshots of a server before and after N idle connections,
// written to $HEAP_DIR (default /tmp) as <target>-<0|N>.heapsnapshot; compare them with heap-diff.ts.
//   npx tsx bench/realtime/heap-probe.ts ours 2000
import { readdirSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, sleep } from '../lib.js'
import { oursEnv, scaledSpace, Shards, startTarget, type Target } from './common.js'

const DIR = process.env.HEAP_DIR ?? '/tmp'
const target = (process.argv[2] ?? 'ours') as Target
const n = Number(process.argv[3] ?? 2000)
const space = await scaledSpace('heap')
const server = await startTarget(target, target === 'ours' ? oursEnv(space) : { BENCH_PREFIX: space.prefix }, { nodeArgs: ['--heapsnapshot-signal=SIGUSR2'] })
const shards = await Shards.start(1)
const snap = async (name: string) => {
  await server.memory()
  const before = new Set(readdirSync(ROOT))
  server.child.kill('SIGUSR2')
  for (;;) {
    await sleep(500)
    const f = readdirSync(ROOT).find((x) => x.endsWith('.heapsnapshot') && !before.has(x))
    if (f) { await sleep(3000); renameSync(join(ROOT, f), `${DIR}/${target}-${name}.heapsnapshot`); return }
  }
}
// Warm up once (first connections compile code paths)
await shards.open('w', target, server.wsUrl, 200, { kind: 'channels', channels: [] })
await shards.close('w')
await sleep(1000)
await snap('0')
await shards.open('x', target, server.wsUrl, n, { kind: 'channels', channels: [] })
await sleep(500)
await snap(String(n))
await shards.stop()
await server.stop()
await space.drop()
