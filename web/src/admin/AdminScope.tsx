// Puts the admin API in context for the page when, and only when, the server confirmed this
// page's connection as the signed-in admin (see identity.ts).
import { useMemo, useSyncExternalStore, type ReactNode } from 'react'
import { useServerUser } from '../identity.js'
import type { SessionStore } from '../session.js'
import { AdminApi } from './api.js'
import { AdminContext } from './context.js'

export function AdminScope ({ session, children }: { session: SessionStore, children: ReactNode }) {
  const current = useSyncExternalStore(session.subscribe, session.getSnapshot)
  const user = useServerUser()
  const api = useMemo(() => new AdminApi(session.getToken), [session])
  const admin = current !== null && user?.sub === current.name && user.role === 'admin'
  return <AdminContext.Provider value={admin ? api : null}>{children}</AdminContext.Provider>
}
