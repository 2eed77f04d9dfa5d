// The sync suite on PostgreSQL alone: two real server processes on one PostgreSQL, no Redis, so
// the LISTEN/NOTIFY bus carries every change; nginx in front, clients through nginx and direct.
import t from 'tap'
import { scaledCluster } from './sync.cluster.js'
import { syncSuite } from './sync.suite.js'

syncSuite(t, await scaledCluster(t, 'postgres'))
