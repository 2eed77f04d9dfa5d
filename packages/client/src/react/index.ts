// @logo-sync/client/react: SyncProvider and useSync (React is a peer dependency).
export { SyncOptionsContext, type SyncOptions } from './options.js'
export { SyncContext, SyncProvider, useSyncClient, type SyncProviderProps } from './provider.js'
export {
  useServerTime, useSync, useSyncStatus,
  type SyncKey, type SyncResult, type SyncResultWithData
} from './use-sync.js'
