// Edit and delete on a card, for admins. The buttons are named after the logo ("Edit Aurora",
// "Delete Aurora"), so a screen reader's list of buttons says which card each one acts on.
// Deleting asks first: it takes the logo's votes with it and cannot be undone.
import { useState } from 'react'
import type { Logo } from 'logo-sync/client'
import { AdminError } from './api.js'
import { useAdmin } from './context.js'
import { Dialog } from './Dialog.js'
import { LogoForm } from './LogoForm.js'

export function LogoAdminActions ({ logo }: { logo: Logo }) {
  const api = useAdmin()
  const [open, setOpen] = useState<'edit' | 'delete' | null>(null)
  const [problem, setProblem] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  if (!api) return null

  async function remove () {
    setBusy(true)
    setProblem(null)
    try {
      await api!.deleteLogo(logo._id)
      setOpen(null)
    } catch (err) {
      setProblem((err as AdminError).message)
    } finally {
      setBusy(false)
    }
  }

  return (
    <div className='admin-actions'>
      <button type='button' className='secondary small' aria-label={`Edit ${logo.title}`} onClick={() => setOpen('edit')}>Edit</button>
      <button type='button' className='danger small' aria-label={`Delete ${logo.title}`} onClick={() => { setProblem(null); setOpen('delete') }}>Delete</button>
      {open === 'edit' && (
        <Dialog title={`Edit “${logo.title}”`} onClose={() => setOpen(null)}>
          <LogoForm logo={logo} onSave={(fields) => api.updateLogo(logo._id, fields)} onDone={() => setOpen(null)} />
        </Dialog>
      )}
      {open === 'delete' && (
        <Dialog title={`Delete “${logo.title}”?`} onClose={() => setOpen(null)} className='confirm'>
          <p>
            The logo and its {logo.totalVotes} {logo.totalVotes === 1 ? 'vote' : 'votes'} are removed for everyone. This cannot be undone.
          </p>
          {problem && <p className='problem' role='alert'>{problem}</p>}
          {/* "Keep it" comes first, so it is what the dialog focuses: a stray Enter deletes nothing. */}
          <div className='buttons'>
            <button type='button' className='secondary' onClick={() => setOpen(null)}>Keep it</button>
            <button type='button' className='danger' onClick={remove} disabled={busy}>{busy ? 'Deleting…' : 'Yes, delete'}</button>
          </div>
        </Dialog>
      )}
    </div>
  )
}
