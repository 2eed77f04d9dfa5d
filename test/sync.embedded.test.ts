// The sync suite on the embedded default: one process, in-process bus, SQLite.
import t from 'tap'
import { listen } from './helper.js'
import { SUITE_ENV, syncSuite } from './sync.suite.js'

const { app, http, ws } = await listen(t, SUITE_ENV)
t.equal(app.bus.kind, 'memory')
t.equal(app.store.kind, 'sqlite')
const embedded = { name: 'embedded', http, ws }
syncSuite(t, () => ({ endpoints: [embedded], writer: embedded, store: app.store }))
