// logo-sync/react: the React bindings of the client SDK (`@logo-sync/client/react`),
// re-exported so `logo-sync/react` keeps working.
export * from '@logo-sync/client/react'
