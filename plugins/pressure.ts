import { getHeapStatistics } from 'node:v8'
import fp from 'fastify-plugin'

/** Routes that must answer even under pressure: liveness and metrics (to see the pressure). */
const exempt = new Set(['/healthz', '/metrics'])

/** How often the event loop's delay (and the heap, when bounded) is sampled. */
const SAMPLE_MS = 250

/**
 * Load shedding: when the event loop lags or the heap is over its bound, answer 503 with
 * Retry-After before the process falls over (PRESSURE_MAX_EVENT_LOOP_DELAY_MS, PRESSURE_MAX_HEAP_BYTES).
 *
 * The loop's delay is how late one timer fires, every SAMPLE_MS: whatever blocked the loop
 * delayed it by as much. This replaces @fastify/under-pressure, which always runs an event-loop
 * histogram that wakes the process every 10 ms (fixed in its code): with prom-client's own, those
 * wake-ups were most of what an idle replica spent (docs/performance.md, "Idle CPU"). Four
 * wake-ups a second measure the same thing at the thresholds that matter here (hundreds of ms).
 */
export default fp(async function pressurePlugin (fastify) {
  const { PRESSURE_MAX_EVENT_LOOP_DELAY_MS: maxDelay, PRESSURE_MAX_HEAP_BYTES: maxHeap } = fastify.config
  if (maxDelay === 0 && maxHeap === 0) return
  let delay = 0
  let heap = 0
  let due = performance.now() + SAMPLE_MS
  const sampler = setInterval(() => {
    const now = performance.now()
    delay = Math.max(0, now - due)
    due = now + SAMPLE_MS
    if (maxHeap > 0) heap = getHeapStatistics().used_heap_size
  }, SAMPLE_MS)
  sampler.unref()
  fastify.addHook('onClose', async () => { clearInterval(sampler) })

  fastify.addHook('onRequest', async (request, reply) => {
    const type = maxDelay > 0 && delay > maxDelay
      ? 'eventLoopDelay'
      : maxHeap > 0 && heap > maxHeap ? 'heapUsedBytes' : null
    if (type === null || exempt.has(request.routeOptions.url ?? '')) return
    request.log.warn({ type, value: type === 'eventLoopDelay' ? Math.round(delay) : heap }, 'shedding load')
    reply.header('retry-after', 5)
    throw fastify.httpErrors.serviceUnavailable(`Server under pressure (${type}); retry shortly`)
  })
}, { name: 'pressure', dependencies: ['config', '@fastify/sensible'] })
