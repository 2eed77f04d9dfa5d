// The sync suite on the scaled mode with Redis: two real server processes on one PostgreSQL
// and one Redis (the Redis bus), nginx in front; clients connect through nginx and to each
// process directly. sync.postgres.test.ts runs the same on PostgreSQL alone.
import t from 'tap'
import { scaledCluster } from './sync.cluster.js'
import { syncSuite } from './sync.suite.js'

syncSuite(t, await scaledCluster(t, 'redis'))
