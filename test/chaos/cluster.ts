// The system under chaos: a private PostgreSQL and a private Redis (test/helper.ts: servers of
// the run's own, to kill and freeze without touching the shared ones), N real server processes
// in scaled mode on them, and nginx running deploy/nginx.conf in front. Knows which exits it
// caused, so any other exit is reported as a crash.
import pg from 'pg'
import {
  privatePostgres, privateRedis, startNginx, startServer, type NginxProcess, type PrivateService, type ServerProcess, type TestLike
} from '../helper.js'

export const SCHEMA = 'chaos'

export interface Replica {
  index: number
  port: number
  server: ServerProcess
  /** Set while the runner means it to be down (killed and not yet restarted). */
  killed: boolean
}

export interface Cluster {
  postgres: PrivateService
  redis: PrivateService
  replicas: Replica[]
  nginx: NginxProcess
  /** Processes that exited without the schedule asking (replicas), as plain sentences. */
  crashes: string[]
  /** A pg client on the run's database, for the invariants (reconnects itself). */
  query: <R extends pg.QueryResultRow>(sql: string, values?: unknown[]) => Promise<R[]>
  killReplica: (i: number) => void
  restartReplica: (i: number) => Promise<void>
  signalReplica: (i: number, signal: 'SIGSTOP' | 'SIGCONT') => void
  /** Whether each replica answers /readyz 200 (directly, not through nginx). */
  allReady: () => Promise<boolean>
  close: () => Promise<void>
}

export function replicaEnv (postgres: PrivateService, redis: PrivateService): Record<string, string> {
  return {
    DATABASE_URL: postgres.url,
    DATABASE_SCHEMA: SCHEMA,
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: 'chaos:',
    // Every client comes through nginx on loopback: limits per address would be limits on nginx.
    TRUST_PROXY: '1',
    RATE_LIMIT_MAX: '1000000',
    VOTE_RATE_LIMIT: '1000000',
    SYNC_MAX_CONNECTIONS_PER_IP: '100000',
    // Short heartbeats, so the SDK notices a frozen replica within seconds; small buffers and a
    // short slow-consumer window, so clients that stop reading are found within a run.
    SYNC_HEARTBEAT_MS: '2000',
    SYNC_MAX_BUFFER_BYTES: '16384',
    SYNC_SLOW_CONSUMER_MS: '2000',
    DATABASE_CONNECT_TIMEOUT_MS: '2000',
    DATABASE_QUERY_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'error'
  }
}

export async function startCluster (t: TestLike, replicaCount: number, log: (line: string) => void = () => {}): Promise<Cluster> {
  const [postgres, redis] = await Promise.all([privatePostgres(t), privateRedis(t)])
  const env = replicaEnv(postgres, redis)
  const crashes: string[] = []
  const replicas: Replica[] = []
  let closing = false

  const watch = (replica: Replica) => {
    const child = replica.server.child
    child.once('exit', (code, signal) => {
      if (replica.killed || closing || replica.server.child !== child) return
      const crash = `replica ${replica.index} exited (code ${code}, signal ${signal}) without the schedule killing it: ${replica.server.output().slice(-2000)}`
      crashes.push(crash)
      log(crash)
    })
  }

  // Sequential boots: migrations take an advisory lock anyway, and tsx compiling three servers
  // at once on two cores only makes each slower.
  for (let index = 0; index < replicaCount; index++) {
    const server = await startServer(t, env)
    const replica: Replica = { index, port: server.port, server, killed: false }
    replicas.push(replica)
    watch(replica)
  }
  const nginx = await startNginx(t, replicas.map((r) => r.port))

  let client: pg.Client | null = null
  const query = async <R extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<R[]> => {
    if (!client) {
      const c = new pg.Client({ connectionString: postgres.url, options: `-c search_path=${SCHEMA}` })
      c.on('error', () => { if (client === c) client = null })
      await c.connect()
      client = c
    }
    try {
      return (await client.query<R>(sql, values)).rows
    } catch (err) {
      const c = client
      client = null
      await c?.end().catch(() => {})
      throw err
    }
  }

  return {
    postgres,
    redis,
    replicas,
    nginx,
    crashes,
    query,
    killReplica (i) {
      const replica = replicas[i]
      replica.killed = true
      replica.server.child.kill('SIGKILL')
    },
    async restartReplica (i) {
      const replica = replicas[i]
      await new Promise<void>((resolve) => {
        const child = replica.server.child
        if (child.exitCode !== null || child.signalCode !== null) resolve()
        else child.once('exit', () => resolve())
      })
      replica.server = await startServer(t, env, { port: replica.port })
      replica.killed = false
      watch(replica)
    },
    signalReplica (i, signal) {
      const pid = replicas[i].server.child.pid
      try {
        if (pid !== undefined) process.kill(pid, signal)
      } catch { /* it is gone: reported as a crash by its exit watcher */ }
    },
    async allReady () {
      const states = await Promise.all(replicas.map(async (r) => {
        try {
          return (await fetch(`${r.server.http}/readyz`, { signal: AbortSignal.timeout(3000) })).status === 200
        } catch { return false }
      }))
      return states.every(Boolean)
    },
    async close () {
      closing = true
      const c = client
      client = null
      await c?.end().catch(() => {})
    }
  }
}
