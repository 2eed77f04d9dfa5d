// The sync suite on the scaled mode: two real server processes on one PostgreSQL and one Redis,
// nginx in front; clients connect through nginx and to each process directly.
import t from 'tap'
import { createPostgresStore } from '../src/store/postgres.js'
import { PG_URL, scaledEnv, startNginx, startServer } from './helper.js'
import { SUITE_ENV, syncSuite } from './sync.suite.js'

const env = await scaledEnv(t, SUITE_ENV)
const [a, b] = await Promise.all([startServer(t, env), startServer(t, env)])
const nginx = await startNginx(t, [a.port, b.port])
const store = await createPostgresStore({ connectionString: PG_URL, schema: env.DATABASE_SCHEMA })
t.teardown(() => store.close())

const replicaA = { name: 'replica A', http: a.http, ws: a.ws }
const replicaB = { name: 'replica B', http: b.http, ws: b.ws }
const balanced = { name: 'nginx', http: nginx.http, ws: nginx.ws }
syncSuite(t, () => ({ endpoints: [balanced, replicaA, replicaB], writer: replicaA, store }))
