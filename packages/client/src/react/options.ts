// What useSync takes, and the defaults a SyncProvider hands down to every useSync under it.
import { createContext } from 'react'

export interface SyncOptions<T> {
  /** Data to start from (e.g. server-rendered props); seeds the client's store if it holds nothing. */
  initialData?: T
  /** Data to show while nothing is held; not written to the store. */
  fallbackData?: T
  /** Read the channel over REST once on mount (besides the socket's snapshot). Default false. */
  revalidateOnMount?: boolean
  /** Read the channel over REST when the window regains focus. Default false. */
  revalidateOnFocus?: boolean
  /** Poll over REST every this many ms while the socket is not open (0: never); once per channel. */
  refreshInterval?: number
  /** Suspend (React Suspense) until the channel holds state; its error goes to the error boundary. */
  suspense?: boolean
}

/** Default useSync options from the nearest SyncProvider(s). */
export const SyncOptionsContext = createContext<SyncOptions<unknown>>({})
