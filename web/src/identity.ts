// Who the server says this page is: the `user` of the socket's `welcome` (or of the answer to an
// in-band `auth`). Admin controls follow this, not the page's own reading of its token: a token
// the server refuses, or a role it does not grant, shows no controls. (The API checks every
// request regardless; hiding the controls is for the people using the page.)
import { useCallback, useSyncExternalStore } from 'react'
import { useSyncClient } from 'logo-sync/react'
import type { WelcomeFrame } from 'logo-sync/client'

export function useServerUser (): WelcomeFrame['user'] {
  const client = useSyncClient()
  const subscribe = useCallback((onChange: () => void) => client.on('user', onChange), [client])
  return useSyncExternalStore(subscribe, () => client.user, () => null)
}
