import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'

/** Routes that must answer even under pressure: liveness and metrics (to see the pressure). */
const exempt = new Set(['/healthz', '/metrics'])

/**
 * Load shedding: when the event loop lags or the heap is over its bound, answer 503 with
 * Retry-After before the process falls over (PRESSURE_MAX_EVENT_LOOP_DELAY_MS, PRESSURE_MAX_HEAP_BYTES).
 */
export default fp(async function pressurePlugin (fastify) {
  const { PRESSURE_MAX_EVENT_LOOP_DELAY_MS: maxDelay, PRESSURE_MAX_HEAP_BYTES: maxHeap } = fastify.config
  await fastify.register(underPressure, {
    maxEventLoopDelay: maxDelay,
    maxHeapUsedBytes: maxHeap,
    sampleInterval: 250,
    retryAfter: 5,
    // A resolved promise lets the request through; a rejected one goes to the error handler.
    pressureHandler: async (request, reply, type, value) => {
      if (exempt.has(request.routeOptions.url ?? '')) return
      request.log.warn({ type, value }, 'shedding load')
      reply.header('retry-after', 5)
      throw fastify.httpErrors.serviceUnavailable(`Server under pressure (${type}); retry shortly`)
    }
  })
}, { name: 'pressure', dependencies: ['config', '@fastify/sensible'] })
