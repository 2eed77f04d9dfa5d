// The cluster sync.scaled.test.ts (Redis) and sync.postgres.test.ts (PostgreSQL alone) run the
// sync suite on.
import type { Test } from 'tap'
import { createPostgresStore } from '../src/store/postgres.js'
import { PG_URL, scaledEnv, startNginx, startServer, type ScaledMode } from './helper.js'
import { SUITE_ENV, type SyncCluster } from './sync.suite.js'

/**
 * The scaled mode: two real server processes on one PostgreSQL (and one Redis in the 'redis'
 * mode), nginx in front. Endpoints: nginx, then each replica directly; writes go to replica A.
 */
export async function scaledCluster (t: Test, mode: ScaledMode): Promise<() => SyncCluster> {
  const env = await scaledEnv(t, SUITE_ENV, mode)
  const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])
  const nginx = await startNginx(t, [a.port, b.port])
  const store = await createPostgresStore({ connectionString: PG_URL, schema: env.DATABASE_SCHEMA })
  t.teardown(() => store.close())
  const replicaA = { name: 'replica A', http: a.http, ws: a.ws }
  const replicaB = { name: 'replica B', http: b.http, ws: b.ws }
  const balanced = { name: 'nginx', http: nginx.http, ws: nginx.ws }
  return () => ({ endpoints: [balanced, replicaA, replicaB], writer: replicaA, store })
}
