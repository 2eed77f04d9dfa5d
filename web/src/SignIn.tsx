// Demo sign-in by name (POST /auth/dev-token), as a voter or as an admin; or, on a server with
// JWT_SECRET (production), a token from the app's own sign-in: pasted here, or handed over in
// the address (`/#token=…`, see session.ts). The page never holds a secret of its own.
import { useEffect, useState, useSyncExternalStore, type FormEvent } from 'react'
import { useSyncClient } from 'logo-sync/react'
import { useServerUser } from './identity.js'
import { DevLoginUnavailable, NAME_PATTERN, devLoginAvailable, devToken, subOf, type SessionStore } from './session.js'

export function SignIn ({ session }: { session: SessionStore }) {
  const client = useSyncClient()
  const current = useSyncExternalStore(session.subscribe, session.getSnapshot)
  const user = useServerUser()
  const [name, setName] = useState('')
  const [pasted, setPasted] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [devUnavailable, setDevUnavailable] = useState(false)
  const [devAvailable, setDevAvailable] = useState<boolean | null>(null)
  const [busy, setBusy] = useState(false)

  useEffect(() => {
    let live = true
    devLoginAvailable().then((available) => {
      if (!live) return
      setDevAvailable(available)
      if (available === false) setDevUnavailable(true)
    }, () => {})
    return () => { live = false }
  }, [])

  async function signIn (event: Pick<FormEvent, 'preventDefault'>, role: 'user' | 'admin' = 'user') {
    event.preventDefault()
    setError(null)
    const wanted = name.trim()
    if (!NAME_PATTERN.test(wanted)) {
      setError('Use letters, digits and _ @ + - (up to 64 characters).')
      return
    }
    setBusy(true)
    try {
      session.set({ name: wanted, token: await devToken(wanted, role), role })
      // The live connection switches identity in-band (the `auth` op).
      await client.refreshAuth()
    } catch (err) {
      if (err instanceof DevLoginUnavailable) setDevUnavailable(true)
      setError((err as Error).message)
    } finally {
      setBusy(false)
    }
  }

  async function signInWithToken (event: FormEvent) {
    event.preventDefault()
    const sub = subOf(pasted.trim())
    if (!sub) {
      setError('That does not look like a token.')
      return
    }
    session.set({ name: sub, token: pasted.trim() })
    await client.refreshAuth()
  }

  async function signOut () {
    session.set(null)
    await client.refreshAuth()
  }

  if (current) {
    return (
      <div className='signin' data-testid='signed-in'>
        Signed in as <strong>{current.name}</strong>{user?.sub === current.name && user.role === 'admin' ? ' (admin)' : ''}{' '}
        <button type='button' className='link' onClick={signOut}>Sign out</button>
      </div>
    )
  }
  return (
    <div className='signin'>
      {!devUnavailable
        ? (
          <form onSubmit={signIn}>
            <label htmlFor='name'>Your name</label>
            <input id='name' name='name' value={name} onChange={(e) => setName(e.target.value)} placeholder='e.g. ada' autoComplete='nickname' maxLength={64} />
            <button type='submit' className='primary' disabled={busy || name.trim() === ''}>{busy ? 'Signing in…' : 'Sign in to vote'}</button>
            {devAvailable && (
              <button type='button' className='secondary' disabled={busy || name.trim() === ''} onClick={(e) => { void signIn(e, 'admin') }}>Sign in as admin</button>
            )}
          </form>
          )
        : (
          <form onSubmit={signInWithToken}>
            <label htmlFor='token'>Token</label>
            <input id='token' value={pasted} onChange={(e) => setPasted(e.target.value)} placeholder="paste a token from your app's sign-in" />
            <button type='submit' className='primary'>Use token</button>
          </form>
          )}
      {error && <p className='problem' role='alert'>{error}</p>}
    </div>
  )
}
