// Demo sign-in: a name, traded for a token by POST /auth/dev-token (offered only by a server
// running without JWT_SECRET, outside production). Kept in localStorage so a reload stays
// signed in; renewed with the same name whenever the SDK asks for a fresh token.
import { tokenExpiry, type TokenSource } from 'logo-sync/client'

export interface Session {
  name: string
  token: string
}

const KEY = 'logo-sync-demo-session'
/** The server's rule for `sub` (it appears in channel names). */
export const NAME_PATTERN = /^[A-Za-z0-9_@+-]{1,64}$/

export class DevLoginUnavailable extends Error {
  constructor () {
    super('This server does not hand out demo tokens (it runs with JWT_SECRET). Paste a token instead.')
  }
}

type Listener = () => void

/** The signed-in user, as a tiny external store (React reads it with useSyncExternalStore). */
export class SessionStore {
  private session: Session | null = load()
  private readonly listeners = new Set<Listener>()

  get current (): Session | null { return this.session }

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  getSnapshot = (): Session | null => this.session

  set (session: Session | null): void {
    this.session = session
    if (session) localStorage.setItem(KEY, JSON.stringify(session))
    else localStorage.removeItem(KEY)
    for (const l of this.listeners) l()
  }

  /** For LogoSyncClient's getToken: the held token, or a new one when it is (nearly) expired or refused. */
  getToken: TokenSource = async ({ reason }) => {
    const s = this.session
    if (!s) return null
    const expiresAt = tokenExpiry(s.token)
    const stale = expiresAt !== null && expiresAt - Date.now() < 60_000
    if (reason === 'unauthorized' || stale) {
      try {
        const token = await devToken(s.name)
        if (this.session?.name === s.name) this.set({ name: s.name, token })
        return token
      } catch {
        // A pasted token cannot be renewed here; the server will say when it is no good.
        return s.token
      }
    }
    return s.token
  }
}

function load (): Session | null {
  try {
    const raw = localStorage.getItem(KEY)
    const s = raw ? JSON.parse(raw) as Session : null
    return s && typeof s.name === 'string' && typeof s.token === 'string' ? s : null
  } catch {
    return null
  }
}

/** POST /auth/dev-token for a name. */
export async function devToken (name: string): Promise<string> {
  const res = await fetch('/auth/dev-token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sub: name, role: 'user' })
  })
  if (res.status === 404) throw new DevLoginUnavailable()
  if (!res.ok) {
    const body = await res.json().catch(() => ({})) as { message?: string }
    throw new Error(body.message ?? `Sign-in failed (${res.status})`)
  }
  return (await res.json() as { token: string }).token
}

/** The `sub` of a pasted token, to show who it signs in as. */
export function subOf (token: string): string | null {
  try {
    const payload = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown }
    return typeof payload.sub === 'string' ? payload.sub : null
  } catch {
    return null
  }
}
