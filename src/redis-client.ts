// One Redis client for the whole process, in the shape the configuration names: a single node
// (REDIS_URL), a primary found through Sentinel (REDIS_SENTINELS), or a Cluster
// (REDIS_CLUSTER_NODES). The rest of the code takes a RedisClient and asks isCluster() only
// where the two really differ (sharded pub/sub, scanning every primary).
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { RedisTopology } from './config.js'

export type RedisClient = Redis | Cluster

/**
 * How long a goodbye to Redis may take at shutdown (UNSUBSCRIBE, QUIT) before the connection is
 * simply dropped: a live Redis answers in a millisecond, and Redis cleans up after a dropped
 * connection anyway. Short, because a frozen Redis makes each of a replica's five connections
 * (shared client, bus and presence, each with a subscriber) wait it out in turn (it was 1 s: 5 s
 * of the shutdown's grace period).
 */
export const GOODBYE_TIMEOUT_MS = 250

export const isCluster = (client: RedisClient): client is Cluster => client instanceof Cluster

export interface RedisClientOptions {
  password?: string
  sentinelPassword?: string
  connectionName?: string
}

/** Reconnect quickly at first, then every 2 s at most, forever: Redis coming back is the normal case. */
const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000)

/**
 * After a Sentinel failover the old primary is a replica: a write there answers READONLY.
 * Reconnecting makes the client ask the sentinels for the new primary.
 */
const reconnectOnReadonly = (err: Error) => err.message.startsWith('READONLY')

/**
 * Commands fail fast while Redis is away (no offline queue, one retry) so callers can fall back
 * instead of hanging; the client keeps reconnecting in the background. Commands issued in the
 * same turn of the event loop go out in one write (auto-pipelining): a batch of votes committed
 * together writes its cache entries and publishes its changes with one syscall, not one per
 * command (about a tenth of the app's CPU per vote in scaled mode went to those writes).
 */
export function createRedisClient (topology: RedisTopology, opts: RedisClientOptions = {}): RedisClient {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    ...(opts.password ? { password: opts.password } : {}),
    ...(opts.connectionName ? { connectionName: opts.connectionName } : {})
  }
  switch (topology.mode) {
    case 'standalone':
      return new Redis(topology.url, { ...common, retryStrategy })
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: topology.sentinels,
        name: topology.name,
        ...(opts.sentinelPassword ? { sentinelPassword: opts.sentinelPassword } : {}),
        // Ask the sentinels again on every reconnect; learn about a switch as soon as they announce it.
        retryStrategy,
        sentinelRetryStrategy: retryStrategy,
        failoverDetector: true,
        reconnectOnError: reconnectOnReadonly
      })
    case 'cluster': {
      const { enableOfflineQueue: _, ...redisOptions } = common
      return new Cluster(topology.nodes, {
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: retryStrategy,
        // A failover takes the cluster's node timeout; until then the slot's commands fail fast.
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        slotsRefreshTimeout: 2000,
        redisOptions
      })
    }
  }
}

/** Every key matching `pattern`, in batches, from every primary (a Cluster spreads keys over them). */
export async function * scanKeys (client: RedisClient, pattern: string): AsyncGenerator<{ node: Redis, keys: string[] }> {
  const nodes = isCluster(client) ? client.nodes('master') : [client]
  for (const node of nodes) {
    for await (const keys of node.scanStream({ match: pattern, count: 500 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) yield { node, keys }
    }
  }
}
