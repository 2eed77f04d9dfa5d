// HTTP load generator in a process of its own (started by lib.startHttpLoad on the load core):
// runs autocannon once per message and answers with a summary; lib measures this process's CPU
// over the run to tell when the load generator itself is the limit.
import autocannon from 'autocannon'
import { createSigner } from 'fast-jwt'
import { serveLoad, type HttpLoad, type HttpResult } from './lib.js'

let users = 0

serveLoad<HttpLoad, HttpResult>(async (load) => {
  const { distinctUsers } = load
  const sign = distinctUsers === undefined ? null : createSigner({ key: distinctUsers.secret, algorithm: 'HS256', expiresIn: 3_600_000 })
  const r = await autocannon({
    url: load.url,
    connections: load.connections,
    duration: load.duration,
    pipelining: load.pipelining ?? 1,
    method: load.method ?? 'GET',
    headers: { ...(load.body === undefined ? {} : { 'content-type': 'application/json' }), ...load.headers },
    body: load.body,
    ...(sign === null
      ? {}
      : {
          requests: [{
            setupRequest: (req: { headers?: Record<string, string> }) => {
              const token = sign({ sub: `${distinctUsers!.subPrefix}${users++}`, role: distinctUsers!.role ?? 'user' })
              return { ...req, headers: { ...req.headers, authorization: `Bearer ${token}` } }
            }
          }]
        })
  })
  const statusCodes: Record<string, number> = {}
  for (const [code, { count }] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = count
  return {
    requests: r.requests.total,
    rps: r.requests.total / r.duration,
    seconds: r.duration,
    latencyP50: r.latency.p50,
    latencyP99: r.latency.p99,
    latencyMean: r.latency.mean,
    bad: r.errors + r.timeouts + r.non2xx,
    statusCodes
  }
})
