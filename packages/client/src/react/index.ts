// @logo-sync/client/react: SyncProvider and useSync (React is a peer dependency).
export { SyncContext, SyncOptionsContext, SyncProvider, useSyncClient, type SyncProviderProps } from './provider.js'
export {
  useServerTime, useSync, useSyncStatus,
  type SyncKey, type SyncOptions, type SyncResult, type SyncResultWithData
} from './use-sync.js'
