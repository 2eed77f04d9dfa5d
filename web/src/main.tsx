import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { LogoSyncClient } from 'logo-sync/client'
import { SyncProvider } from 'logo-sync/react'
import { App } from './App.js'
import { SessionStore } from './session.js'
import './styles.css'

const session = new SessionStore()
// Same origin: `/sync` becomes ws(s)://<host>/sync, REST goes to http(s)://<host>.
const client = new LogoSyncClient({ url: '/sync', getToken: session.getToken })
// For a look from the devtools console.
;(window as unknown as { logoSync: LogoSyncClient }).logoSync = client

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SyncProvider client={client}>
      <App session={session} />
    </SyncProvider>
  </StrictMode>
)
