// useSync: the seed's hook, on useSyncExternalStore over the client's per-channel store, with
// what SWR and TanStack Query users expect: conditional channels, isLoading/isValidating,
// optimistic mutate, per-channel deduplicated revalidation and polling (in the client),
// provider defaults, Suspense, and re-renders only for fields the component read.
import { useCallback, useContext, useEffect, useRef, useState, useSyncExternalStore } from 'react'
import { pendingState } from '../store.js'
import type { ChannelState, ConnectionStatus, MutateData, MutateOptions } from '../types.js'
import { SyncOptionsContext, type SyncOptions } from './options.js'
import { useSyncClient } from './provider.js'

export interface SyncResult<T> {
  data?: T
  /** The channel's refusal (e.g. `forbidden`) or the last failed REST read; null when fine. */
  error: Error | null
  /** The connection's status: `open` means the data is live. */
  status: ConnectionStatus
  /** The version held (null for channels sent whole, or before any state arrived). */
  version: number | null
  /** The entity was deleted (a `deleted` change, or 404 over REST). */
  deleted: boolean
  /** Nothing is held for the channel yet (initialData/fallbackData may stand in). */
  isLoading: boolean
  /** A REST read of the channel is in flight (revalidation, polling), whoever started it. */
  isValidating: boolean
  /** LogoSyncClient.mutate for this channel; functions get the data shown (fallbacks included). */
  mutate: (data?: MutateData<T>, options?: MutateOptions<T>) => Promise<T | undefined>
}

/** With `initialData`, `fallbackData` or `suspense: true` there is always data. */
export interface SyncResultWithData<T> extends SyncResult<T> {
  data: T
}

/** A channel name, or nothing (null, undefined, false, ''): then the hook subscribes to nothing. */
export type SyncKey = string | null | undefined | false

const FOCUS_THROTTLE_MS = 2_000
const noop = () => {}

/**
 * Live state of `channel` (or of `channel.id`: `useSync('logos', id)` is `logos.<id>`).
 * One wire subscription per channel however many components use it.
 */
export function useSync<T> (channel: string, id: string | undefined, options: SyncOptions<T> & ({ initialData: T } | { fallbackData: T } | { suspense: true })): SyncResultWithData<T>
export function useSync<T> (channel: SyncKey, id?: string, options?: SyncOptions<T>): SyncResult<T>
export function useSync<T> (channel: SyncKey, id?: string, options: SyncOptions<T> = {}): SyncResult<T> {
  const client = useSyncClient()
  const defaults = useContext(SyncOptionsContext) as SyncOptions<T>
  const { initialData, fallbackData, revalidateOnMount, revalidateOnFocus, refreshInterval = 0, suspense } = { ...defaults, ...options }
  const name = channel ? (id ? `${channel}.${id}` : channel) : null
  // No channel, no data: not even a fallback (conditional fetching).
  const shown = name ? initialData ?? fallbackData : undefined
  const latest = useRef(shown)
  latest.current = shown

  // The state fields this component read while rendering: a change to any other does not
  // re-render it (SWR's dependency tracking), so a `validating` flip re-renders only readers.
  const [used] = useState(() => new Set<keyof ChannelState>())
  const snapshot = useRef<ChannelState<T> | null>(null)
  const subscribe = useCallback((onChange: () => void) => {
    if (!name) return noop
    if (initialData !== undefined) client.prime(name, initialData)
    return client.watch(name, onChange)
    // initialData is only a seed: a new object on every render must not resubscribe.
  }, [client, name])
  const getState = (): ChannelState<T> => {
    const next = name ? client.getState<T>(name) : pendingState as ChannelState<T>
    const prev = snapshot.current
    if (prev && [...used].every((k) => Object.is(prev[k], next[k]))) return prev
    return (snapshot.current = next)
  }
  const state = useSyncExternalStore(subscribe, getState, getState)
  const status = useSyncStatus()

  const revalidate = useCallback(() => { if (name) client.revalidate(name).catch(noop) }, [client, name])

  useEffect(() => {
    if (revalidateOnMount) revalidate()
  }, [revalidate, revalidateOnMount])

  useEffect(() => {
    if (!revalidateOnFocus || typeof window === 'undefined') return
    let last = 0
    const onFocus = () => {
      if (document.visibilityState === 'hidden' || Date.now() - last < FOCUS_THROTTLE_MS) return
      last = Date.now()
      revalidate()
    }
    window.addEventListener('focus', onFocus)
    document.addEventListener('visibilitychange', onFocus)
    return () => {
      window.removeEventListener('focus', onFocus)
      document.removeEventListener('visibilitychange', onFocus)
    }
  }, [revalidate, revalidateOnFocus])

  // The socket is down: the client keeps the channel fresh over REST, one timer per channel.
  useEffect(() => (name && refreshInterval > 0 ? client.poll(name, refreshInterval) : undefined), [client, name, refreshInterval])

  const mutate = useCallback((data?: MutateData<T>, opts: MutateOptions<T> = {}) => {
    if (!name) return Promise.resolve(undefined)
    const withShown = <F>(f: F) => (typeof f === 'function' ? (c: T | undefined) => f(c ?? latest.current) : f)
    return client.mutate<T>(name, withShown(data), { ...opts, optimisticData: withShown(opts.optimisticData) })
  }, [client, name])

  if (suspense && name && state.status === 'pending' && shown === undefined) {
    if (state.error) throw state.error
    throw client.ready(name)
  }

  const read = <K extends keyof ChannelState>(...keys: K[]) => { for (const k of keys) used.add(k) }
  return {
    // A ready channel's data is the data, null included (`voting.deadline` is null when no
    // deadline is set); initialData/fallbackData stand in only while nothing is held.
    get data () { read('data', 'status'); return state.status === 'ready' ? state.data : shown },
    get error () { read('error'); return state.error },
    status,
    get version () { read('version'); return state.version },
    get deleted () { read('status'); return state.status === 'deleted' },
    get isLoading () { read('status', 'error'); return !!name && state.status === 'pending' && !state.error },
    get isValidating () { read('validating'); return state.validating },
    mutate
  }
}

/** The connection's status, re-rendering on change. */
export function useSyncStatus (): ConnectionStatus {
  const client = useSyncClient()
  const subscribe = useCallback((onChange: () => void) => client.on('status', onChange), [client])
  const get = () => client.status
  return useSyncExternalStore(subscribe, get, get)
}

/**
 * The server's clock (ms since epoch) for countdowns: re-renders every `tickMs` and whenever
 * the estimate of the server's clock changes, and reads the clock at render time, so a render
 * caused by anything else is never behind either.
 */
export function useServerTime (tickMs = 1_000): number {
  const client = useSyncClient()
  const [, setTick] = useState(0)
  useEffect(() => {
    const bump = () => setTick((n) => n + 1)
    const timer = setInterval(bump, tickMs)
    const off = client.on('clock', bump)
    return () => {
      clearInterval(timer)
      off()
    }
  }, [client, tickMs])
  return client.serverNow()
}
