// Configuration rules that are ours (src/config.ts): the three shapes of Redis and the one
// "is Redis configured" predicate every Redis-backed part asks.
import t from 'tap'
import { ConfigError, loadConfig, redisConfigured } from '../src/config.js'

const base = { DATA_DIR: '/tmp/logo-sync-config-test' }

t.test('Redis: none, one node, Sentinel or Cluster; one predicate for all three', async (t) => {
  const none = loadConfig(base)
  t.equal(none.redis, null)
  t.notOk(redisConfigured(none))

  const single = loadConfig({ ...base, REDIS_URL: 'redis://cache:6379' })
  t.same(single.redis, { mode: 'standalone', url: 'redis://cache:6379' })
  t.ok(redisConfigured(single))

  const sentinel = loadConfig({ ...base, REDIS_SENTINELS: 's1:26379, s2:26380,[::1]:26381', REDIS_SENTINEL_NAME: 'logos' })
  t.same(sentinel.redis, {
    mode: 'sentinel',
    name: 'logos',
    sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }, { host: '::1', port: 26381 }]
  })
  t.ok(redisConfigured(sentinel))
  t.equal(loadConfig({ ...base, REDIS_SENTINELS: 's1:26379' }).REDIS_SENTINEL_NAME, 'mymaster', 'the conventional primary name by default')

  const cluster = loadConfig({ ...base, REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7000' })
  t.same(cluster.redis, { mode: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7000 }] })
  t.ok(redisConfigured(cluster))
})

t.test('bad Redis settings name the variable', async (t) => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'b:7000' }, 'REDIS_CLUSTER_NODES', /cannot be combined with REDIS_URL/],
    [{ REDIS_SENTINELS: 'a:26379', REDIS_CLUSTER_NODES: 'b:7000' }, 'REDIS_CLUSTER_NODES', /cannot be combined with REDIS_SENTINELS/],
    [{ REDIS_SENTINELS: 'a' }, 'REDIS_SENTINELS', /must match/],
    [{ REDIS_SENTINELS: 'a:26379,' }, 'REDIS_SENTINELS', /must match/],
    [{ REDIS_CLUSTER_NODES: 'a:70000' }, 'REDIS_CLUSTER_NODES', /port out of range/],
    [{ REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'bad name' }, 'REDIS_SENTINEL_NAME', /must match/]
  ]
  for (const [env, variable, why] of cases) {
    const err = (() => { try { loadConfig({ ...base, ...env }) } catch (e) { return e } })()
    t.type(err, ConfigError, JSON.stringify(env))
    t.equal((err as ConfigError).variable, variable, `${JSON.stringify(env)} names ${variable}`)
    t.match((err as Error).message, why)
  }
})
