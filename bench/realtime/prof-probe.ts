// Dev probe (not a scenario): a CPU profile (--cpu-prof) of a server fanning changes out to N
// subscribers of one channel, RATE changes/s for SECONDS. Profiles go to PROF_DIR (default /tmp).
//   npx tsx bench/realtime/prof-probe.ts ours 1000 20 10        one channel
//   npx tsx bench/realtime/prof-probe.ts ours 3000 2 10 mix     connections-10k's mix
import { sleep } from '../lib.js'
import { atRate, createLogos, imageUrlFor, oursEnv, Publisher, scaledSpace, Shards, startTarget, type Target } from './common.js'

const target = (process.argv[2] ?? 'ours') as Target
const n = Number(process.argv[3] ?? 1000)
const rate = Number(process.argv[4] ?? 20)
const seconds = Number(process.argv[5] ?? 10)
const mix = process.argv[6] === 'mix'
const dir = process.env.PROF_DIR ?? '/tmp'
const space = await scaledSpace('prof')
const env = target === 'ours' ? oursEnv(space) : { BENCH_PREFIX: space.prefix }
const server = await startTarget(target, env, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
const ours = target === 'ours' ? server : await startTarget('ours', oursEnv(space))
const logos = await createLogos(ours, mix ? 20 : 1)
const logoId = logos[0]
const publisher = new Publisher(space.prefix, imageUrlFor(logoId, 278))
if (target === 'socketio') await publisher.withSocketIo()
const shards = await Shards.start(2)
await shards.open('x', target, server.wsUrl, n, mix ? { kind: 'mix', logos, perConn: 3 } : { kind: 'channels', channels: [`logos.${logoId}`] })
await shards.begin()
await atRate(rate, rate * seconds, (i) => mix && target === 'bare' ? publisher.publishBareListAndLogo(logos[i % logos.length]) : publisher.publish(target, logos[i % logos.length]))
const got = await shards.end(mix ? null : 'x', rate * seconds, 10_000)
if (mix) await sleep(5000)
console.log(`${target}: ${got.stamped} deliveries, p50 ${got.hist.q(0.5)} ms, p99 ${got.hist.q(0.99)} ms`)
await sleep(500)
await shards.stop()
await publisher.close()
await server.stop()
if (ours !== server) await ours.stop()
await space.drop()
