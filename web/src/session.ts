// Demo sign-in: a name, traded for a token by POST /auth/dev-token (offered only by a server
// running without JWT_SECRET, outside production). Kept in localStorage so a reload stays
// signed in; renewed with the same name whenever the SDK asks for a fresh token.
import { tokenClaims, tokenExpiry, type TokenSource } from 'logo-sync/client'

export interface Session {
  name: string
  token: string
  /** The role asked for at the dev sign-in (renewals ask for the same); absent for a handed-in token. */
  role?: 'user' | 'admin'
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
        const token = await devToken(s.name, s.role)
        if (this.session?.name === s.name) this.set({ ...s, token })
        return token
      } catch (err) {
        // A token from the app's own sign-in cannot be renewed here. Once the server refused it,
        // the page carries on signed out (anonymous, live) instead of retrying a dead token.
        if (reason === 'unauthorized' && err instanceof DevLoginUnavailable) {
          if (this.session === s) this.set(null)
          return null
        }
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
export async function devToken (name: string, role: 'user' | 'admin' = 'user'): Promise<string> {
  const res = await fetch('/auth/dev-token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sub: name, role })
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
  return tokenClaims(token)?.sub ?? null
}

/** Whether this server hands out demo tokens (GET /auth/options); null when it could not be asked. */
export async function devLoginAvailable (): Promise<boolean | null> {
  try {
    const res = await fetch('/auth/options', { headers: { accept: 'application/json' } })
    return res.ok ? (await res.json() as { devTokens: boolean }).devTokens : null
  } catch {
    return null
  }
}

/**
 * A token handed over by the app's own sign-in, which sends the browser to `/#token=<jwt>`. The
 * fragment never reaches a server or a log; it is removed from the address bar at once so it is
 * neither bookmarked nor shared by accident.
 */
export function takeHandedToken (): string | null {
  const params = new URLSearchParams(location.hash.slice(1))
  const token = params.get('token')
  if (!token) return null
  params.delete('token')
  const rest = params.toString()
  history.replaceState(history.state, '', location.pathname + location.search + (rest ? `#${rest}` : ''))
  return token
}
