// SyncProvider: hands a LogoSyncClient to the hooks below it, either one you made or one it
// makes (and closes) itself from the same options as `new LogoSyncClient(...)`.
import { createContext, useContext, useEffect, useRef, type ReactNode } from 'react'
import { LogoSyncClient } from '../client.js'
import type { LogoSyncClientOptions } from '../types.js'

export const SyncContext = createContext<LogoSyncClient | null>(null)

export type SyncProviderProps =
  | { client: LogoSyncClient, children?: ReactNode }
  /** Options are read once, on first render; give the provider a new `key` to change them. */
  | (LogoSyncClientOptions & { client?: undefined, children?: ReactNode })

export function SyncProvider (props: SyncProviderProps) {
  const latest = useRef(props)
  latest.current = props
  const owned = useRef<LogoSyncClient | null>(null)
  const closing = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)

  let client = props.client ?? null
  if (!client) {
    if (!owned.current) {
      const { children: _children, client: _client, getToken, ...options } = props as LogoSyncClientOptions & { children?: ReactNode, client?: undefined }
      owned.current = new LogoSyncClient({
        ...options,
        // Always the latest prop, so an inline getToken closing over state stays current.
        getToken: getToken ? (ctx) => (latest.current as LogoSyncClientOptions).getToken?.(ctx) : undefined,
        autoConnect: false
      })
    }
    client = owned.current
  }

  useEffect(() => {
    if (client !== owned.current) return
    // StrictMode mounts, unmounts and mounts again: closing is deferred so the remount keeps it.
    clearTimeout(closing.current)
    client.connect()
    return () => { closing.current = setTimeout(() => client.close(), 0) }
  }, [client])

  return <SyncContext.Provider value={client}>{props.children}</SyncContext.Provider>
}

/** The client from the nearest SyncProvider. */
export function useSyncClient (): LogoSyncClient {
  const client = useContext(SyncContext)
  if (!client) throw new Error('useSync needs a <SyncProvider> above it (with a client, or a url)')
  return client
}
