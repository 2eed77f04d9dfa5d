import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { LogoSyncClient } from 'logo-sync/client'
import { SyncProvider } from 'logo-sync/react'
import { AdminScope } from './admin/AdminScope.js'
import { App } from './App.js'
import { SessionStore, subOf, takeHandedToken } from './session.js'
import './styles.css'

const session = new SessionStore()
// A token from the app's own sign-in (`/#token=…`) replaces whatever session was kept.
const handed = takeHandedToken()
const handedSub = handed ? subOf(handed) : null
if (handed && handedSub) session.set({ name: handedSub, token: handed })
// Same origin: `/sync` becomes ws(s)://<host>/sync, REST goes to http(s)://<host>.
const client = new LogoSyncClient({ url: '/sync', getToken: session.getToken })
// For a look from the devtools console.
;(window as unknown as { logoSync: LogoSyncClient }).logoSync = client

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SyncProvider client={client}>
      <AdminScope session={session}>
        <App session={session} />
      </AdminScope>
    </SyncProvider>
  </StrictMode>
)
