// logo-sync/client: the client SDK, which lives in its own package (packages/client,
// `@logo-sync/client`); re-exported so `logo-sync/client` keeps working.
export * from '@logo-sync/client'
