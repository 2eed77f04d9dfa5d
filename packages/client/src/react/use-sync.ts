// useSync: the seed's hook, on useSyncExternalStore over the client's per-channel store.
import { useCallback, useEffect, useState, useSyncExternalStore } from 'react'
import type { ChannelState, ConnectionStatus } from '../types.js'
import { useSyncClient } from './provider.js'

export interface SyncOptions<T> {
  /** Data to start from (e.g. server-rendered props); seeds the client's store if it holds nothing. */
  initialData?: T
  /** Data to show while nothing is held; not written to the store. */
  fallbackData?: T
  /** Read the channel over REST once on mount (besides the socket's snapshot). Default false. */
  revalidateOnMount?: boolean
  /** Read the channel over REST when the window regains focus. Default false. */
  revalidateOnFocus?: boolean
  /** Poll over REST every this many ms while the socket is not open (0: never). */
  refreshInterval?: number
}

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
}

/** With `initialData` or `fallbackData` there is always data. */
export interface SyncResultWithData<T> extends SyncResult<T> {
  data: T
}

const FOCUS_THROTTLE_MS = 2_000

/**
 * Live state of `channel` (or of `channel.id`: `useSync('logos', id)` is `logos.<id>`).
 * One wire subscription per channel however many components use it.
 */
export function useSync<T> (channel: string, id: string | undefined, options: SyncOptions<T> & ({ initialData: T } | { fallbackData: T })): SyncResultWithData<T>
export function useSync<T> (channel: string, id?: string, options?: SyncOptions<T>): SyncResult<T>
export function useSync<T> (channel: string, id?: string, options: SyncOptions<T> = {}): SyncResult<T> {
  const client = useSyncClient()
  const name = id ? `${channel}.${id}` : channel
  const { initialData, fallbackData, revalidateOnMount = false, revalidateOnFocus = false, refreshInterval = 0 } = options
  const [restError, setRestError] = useState<Error | null>(null)

  const subscribe = useCallback((onChange: () => void) => {
    if (initialData !== undefined) client.prime(name, initialData)
    return client.watch(name, onChange)
    // initialData is only a seed: a new object on every render must not resubscribe.
  }, [client, name])
  const getState = () => client.getState<T>(name)
  const state: ChannelState<T> = useSyncExternalStore(subscribe, getState, getState)
  const status = useSyncStatus()

  const revalidate = useCallback(() => {
    client.revalidate(name).then(() => setRestError(null), (err: Error) => setRestError(err))
  }, [client, name])

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

  const live = status === 'open'
  useEffect(() => {
    if (live || !refreshInterval || refreshInterval <= 0) return
    // The socket is down: keep the page fresh over REST until it is back.
    const timer = setInterval(() => {
      if (typeof document === 'undefined' || document.visibilityState !== 'hidden') revalidate()
    }, refreshInterval)
    return () => clearInterval(timer)
  }, [live, refreshInterval, revalidate])

  useEffect(() => {
    if (live) setRestError(null)
  }, [live])

  return {
    // A ready channel's data is the data, null included (`voting.deadline` is null when no
    // deadline is set); initialData/fallbackData stand in only while nothing is held.
    data: state.status === 'ready' ? state.data : initialData ?? fallbackData,
    error: state.error ?? restError,
    status,
    version: state.version,
    deleted: state.status === 'deleted'
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
