// Real Redis topologies for tests, on free loopback ports (never 6379), each process killed at
// teardown: a primary with a replica and three sentinels (`redis-server --sentinel`), and a
// three-primary Cluster (`--cluster-enabled yes` ×3 + `redis-cli --cluster create`).
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort, tempDir, type TestLike } from './helper.js'

export interface RedisNode {
  port: number
  /** Runs one command against this node on a short-lived connection. */
  call (...args: (string | number)[]): Promise<unknown>
  stop (): Promise<void>
}

/** Polls `check` every 100 ms until it returns truthy, or throws after timeoutMs naming `what`. */
export async function until<T> (what: string, check: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value
    } catch (err) { last = err }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function callOn (port: number, args: (string | number)[]): Promise<unknown> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return await redis.call(String(args[0]), ...args.slice(1).map(String))
  } finally {
    redis.disconnect()
  }
}

/** One redis-server process with the given arguments (after a config file, if any). */
export async function startRedisNode (t: TestLike, port: number, args: string[], configFile?: string): Promise<RedisNode> {
  const child: ChildProcess = spawn('redis-server', [...(configFile ? [configFile] : []), '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', ...args], { stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(stop)
  const node: RedisNode = { port, call: (...a) => callOn(port, a), stop }
  await until(`redis-server on ${port}`, async () => (await node.call('PING')) === 'PONG', 10_000)
  return node
}

const infoField = (info: unknown, field: string) => new RegExp(`^${field}:(.*)$`, 'm').exec(String(info))?.[1]?.trim()

export interface SentinelSetup {
  name: string
  primary: RedisNode
  replica: RedisNode
  sentinels: RedisNode[]
  /** `host:port,…` of the sentinels, for REDIS_SENTINELS. */
  sentinelsEnv: string
  /** The port the sentinels currently name as the primary. */
  primaryPort (): Promise<number>
  /** SENTINEL FAILOVER, then waits until the sentinels name the other node and it is a primary. */
  failover (): Promise<RedisNode>
}

/**
 * A primary, one replica of it, and three sentinels monitoring them (quorum 2), each on a free
 * loopback port with its files in a temp dir. Resolves once every sentinel knows the replica, so
 * a failover can be forced at once.
 */
export async function sentinelSetup (t: TestLike, name = 'logosync'): Promise<SentinelSetup> {
  const dir = tempDir(t, 'logo-sync-sentinel-')
  const [primaryPort, replicaPort, ...sentinelPorts] = await Promise.all(Array.from({ length: 5 }, () => freePort()))
  const primary = await startRedisNode(t, primaryPort, ['--dir', dir])
  const replica = await startRedisNode(t, replicaPort, ['--dir', dir, '--replicaof', '127.0.0.1', String(primaryPort)])
  await until('the replica to sync', async () => infoField(await replica.call('INFO', 'replication'), 'master_link_status') === 'up')
  const sentinels = await Promise.all(sentinelPorts.map((port) => {
    const conf = join(dir, `sentinel-${port}.conf`)
    // Sentinel rewrites its config file, so each gets a writable one of its own.
    writeFileSync(conf, [
      `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
      `sentinel down-after-milliseconds ${name} 2000`,
      `sentinel failover-timeout ${name} 10000`,
      `sentinel parallel-syncs ${name} 1`,
      ''
    ].join('\n'))
    return startRedisNode(t, port, ['--sentinel', '--dir', dir], conf)
  }))
  for (const s of sentinels) {
    await until(`sentinel ${s.port} to see the replica`, async () => {
      const replicas = await s.call('SENTINEL', 'REPLICAS', name) as string[][]
      return replicas.some((fields) => {
        const f = new Map<string, string>()
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i], fields[i + 1])
        return f.get('port') === String(replicaPort) && f.get('flags') === 'slave' && f.get('master-link-status') === 'ok'
      })
    })
  }
  const currentPrimary = async () => Number((await sentinels[0].call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as string[])[1])
  return {
    name,
    primary,
    replica,
    sentinels,
    sentinelsEnv: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
    primaryPort: currentPrimary,
    async failover () {
      const before = await currentPrimary()
      const next = before === primary.port ? replica : primary
      await sentinels[0].call('SENTINEL', 'FAILOVER', name)
      await until('the sentinels to name the new primary', async () => {
        const named = await Promise.all(sentinels.map(async (s) => Number((await s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as string[])[1])))
        return named.every((p) => p === next.port)
      })
      await until('the new primary to take writes', async () => infoField(await next.call('INFO', 'replication'), 'role') === 'master')
      return next
    }
  }
}

export interface ClusterSetup {
  nodes: RedisNode[]
  /** `host:port,…` of every node, for REDIS_CLUSTER_NODES. */
  nodesEnv: string
}

/**
 * A Redis Cluster of `masters` primaries and no replicas (`redis-cli --cluster create`), each
 * node with its data port and cluster bus port picked free. Resolves once every node says
 * cluster_state:ok.
 */
export async function redisCluster (t: TestLike, masters = 3): Promise<ClusterSetup> {
  const dir = tempDir(t, 'logo-sync-cluster-')
  const ports = await Promise.all(Array.from({ length: masters * 2 }, () => freePort()))
  const nodes = await Promise.all(Array.from({ length: masters }, (_, i) => {
    const [port, busPort] = [ports[2 * i], ports[2 * i + 1]]
    return startRedisNode(t, port, [
      '--dir', dir,
      '--cluster-enabled', 'yes',
      '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--cluster-port', String(busPort),
      '--cluster-node-timeout', '2000'
    ])
  }))
  await new Promise<void>((resolve, reject) => {
    const cli = spawn('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    cli.stdout!.on('data', (d) => { out += d })
    cli.stderr!.on('data', (d) => { out += d })
    const timer = setTimeout(() => cli.kill('SIGKILL'), 20_000)
    cli.on('error', reject)
    cli.on('exit', (code) => { clearTimeout(timer); code === 0 ? resolve() : reject(new Error(`redis-cli --cluster create exited ${code}: ${out}`)) })
  })
  for (const node of nodes) {
    await until(`cluster node ${node.port} to be ok`, async () => infoField(await node.call('CLUSTER', 'INFO'), 'cluster_state') === 'ok')
  }
  return { nodes, nodesEnv: nodes.map((n) => `127.0.0.1:${n.port}`).join(',') }
}
