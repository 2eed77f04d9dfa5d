import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** The graceful part of a shutdown: src/server.ts runs it on SIGTERM, before close(). */
    drain: () => Promise<void>
    /** True from the moment a drain starts: /readyz answers 503. */
    isDraining: () => boolean
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms) })

/**
 * Leaving a load balancer without dropping anyone. At once, /readyz answers 503 so balancers
 * that probe it stop routing new work here, while REST and /sync keep serving for
 * SHUTDOWN_DRAIN_MS (the time they take to notice). Then new /sync connections are refused and
 * the open ones are closed with 1001 in batches over SHUTDOWN_SPREAD_MS (the SDK reconnects, with
 * jitter, through the balancer to another replica). What is left (in-flight requests, stores,
 * Redis) is app.close()'s job. Idempotent: a second call waits for the first.
 */
export default fp(async function drainPlugin (fastify) {
  const { SHUTDOWN_DRAIN_MS: drainMs, SHUTDOWN_SPREAD_MS: spreadMs } = fastify.config
  const log = fastify.log.child({ component: 'drain' })
  let draining: Promise<void> | null = null
  fastify.decorate('isDraining', () => draining !== null)
  fastify.decorate('drain', () => {
    draining ??= (async () => {
      log.info({ drainMs, spreadMs, connections: fastify.syncHub.connectionCount }, 'draining: /readyz answers 503 while REST and /sync keep serving')
      await sleep(drainMs)
      log.info({ connections: fastify.syncHub.connectionCount, spreadMs }, 'closing /sync connections with 1001, spread over the window')
      await fastify.syncHub.drain(spreadMs)
      log.info({ connections: fastify.syncHub.connectionCount }, 'drained')
    })()
    return draining
  })
}, { name: 'drain', dependencies: ['config', 'sync'] })
