// SyncProvider: hands a LogoSyncClient to the hooks below it — one you made, one it makes (and
// closes) itself from the same options as `new LogoSyncClient(...)`, or its parent's — and
// default options for every useSync below it (`options`), merged over any parent's.
import { createContext, useContext, useEffect, useRef, type ReactNode } from 'react'
import { LogoSyncClient } from '../client.js'
import type { LogoSyncClientOptions } from '../types.js'
import { SyncOptionsContext, type SyncOptions } from './options.js'

export const SyncContext = createContext<LogoSyncClient | null>(null)

interface Common {
  children?: ReactNode
  /** Defaults for every useSync below (a hook's own options win), e.g. `{ refreshInterval: 5000 }`. */
  options?: SyncOptions<unknown>
}

export type SyncProviderProps = Common & (
  | { client: LogoSyncClient }
  /** Options are read once, on first render; give the provider a new `key` to change them. */
  | (LogoSyncClientOptions & { client?: undefined })
  /** Neither: the parent provider's client, with more defaults. */
  | { client?: undefined, url?: undefined }
)

export function SyncProvider (props: SyncProviderProps) {
  const latest = useRef(props)
  latest.current = props
  const parent = useContext(SyncContext)
  const owned = useRef<LogoSyncClient | null>(null)
  const closing = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)

  let client = props.client ?? null
  if (!client && (props as { url?: string }).url === undefined) client = parent
  else if (!client) {
    if (!owned.current) {
      const { children: _children, client: _client, options: _options, getToken, ...options } = props as LogoSyncClientOptions & Common & { client?: undefined }
      owned.current = new LogoSyncClient({
        ...options,
        // Always the latest prop, so an inline getToken closing over state stays current.
        getToken: getToken ? (ctx) => (latest.current as LogoSyncClientOptions).getToken?.(ctx) : undefined,
        autoConnect: false
      })
    }
    client = owned.current
  }

  // Merged over the parent's; the same object while the merged values stay the same, so an
  // inline `options={{…}}` does not re-render every hook below on each render.
  const inherited = useContext(SyncOptionsContext)
  const merged = useRef<SyncOptions<unknown>>(inherited)
  const next = props.options ? { ...inherited, ...props.options } : inherited
  if (!shallowEqual(merged.current, next)) merged.current = next

  useEffect(() => {
    if (!client || client !== owned.current) return
    // StrictMode mounts, unmounts and mounts again: closing is deferred so the remount keeps it.
    clearTimeout(closing.current)
    client.connect()
    return () => { closing.current = setTimeout(() => client.close(), 0) }
  }, [client])

  return (
    <SyncContext.Provider value={client}>
      <SyncOptionsContext.Provider value={merged.current}>{props.children}</SyncOptionsContext.Provider>
    </SyncContext.Provider>
  )
}

function shallowEqual (a: object, b: object): boolean {
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => Object.is((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

/** The client from the nearest SyncProvider. */
export function useSyncClient (): LogoSyncClient {
  const client = useContext(SyncContext)
  if (!client) throw new Error('useSync needs a <SyncProvider> above it (with a client, or a url)')
  return client
}
