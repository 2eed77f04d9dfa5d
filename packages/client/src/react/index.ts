// logo-sync/react: SyncProvider and useSync (React is a peer dependency).
export { SyncContext, SyncProvider, useSyncClient, type SyncProviderProps } from './provider.js'
export { useServerTime, useSync, useSyncStatus, type SyncOptions, type SyncResult, type SyncResultWithData } from './use-sync.js'
