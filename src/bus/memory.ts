import type { Bus, BusEvent, BusMessage } from './types.js'

/** In-process bus for the embedded default: one process, so publish is local delivery. */
export function createMemoryBus (origin: string): Bus {
  const handlers = new Set<(m: BusMessage) => void>()
  async function publish (event: BusEvent): Promise<void> {
    const message: BusMessage = { event, origin, publishedAt: Date.now() }
    // Deliver on a later tick, like a real bus: the publisher's response never waits on fanout.
    queueMicrotask(() => { for (const h of handlers) h(message) })
  }
  return {
    kind: 'memory',
    publish,
    afterCommit: publish,
    subscribe (handler) {
      handlers.add(handler)
      return () => { handlers.delete(handler) }
    },
    onResync () { return () => {} },
    holdResyncNotice () { return () => {} }, // one process: nothing is ever lost between replicas
    async ping () {},
    async close () { handlers.clear() }
  }
}
