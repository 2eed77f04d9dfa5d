// In-process presence (embedded mode): one replica, so its own count is everyone's.
import type { PresenceBackend, PresenceView } from './types.js'

export function createMemoryPresence (): PresenceBackend {
  const members = new Map<string, number>()
  const handlers = new Set<(view: PresenceView) => void>()
  let seq = 0
  return {
    kind: 'memory',
    async report (replicaId, count) {
      const changed = (members.get(replicaId) ?? 0) !== count
      if (count > 0) members.set(replicaId, count)
      else members.delete(replicaId)
      const view = { seq: ++seq, members: Object.fromEntries(members) }
      if (changed) for (const h of handlers) h(view)
      return view
    },
    watch (handler) {
      handlers.add(handler)
      return () => { handlers.delete(handler) }
    },
    onGap: () => () => {},
    async close () { handlers.clear() }
  }
}
