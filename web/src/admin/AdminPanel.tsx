// What an admin sees above the gallery: "Add logo" and the voting deadline. Everything goes
// through the REST API; the result comes back live over /sync, here as on every open page.
import { useState } from 'react'
import { useAdmin } from './context.js'
import { DeadlineForm } from './DeadlineForm.js'
import { Dialog } from './Dialog.js'
import { LogoForm } from './LogoForm.js'

export function AdminPanel ({ deadline }: { deadline: string | null | undefined }) {
  const api = useAdmin()
  const [adding, setAdding] = useState(false)
  if (!api) return null
  return (
    <section className='admin-panel' aria-labelledby='admin-heading'>
      <h2 id='admin-heading'>Manage the gallery</h2>
      <div className='admin-row'>
        <button type='button' className='primary' onClick={() => setAdding(true)}>Add logo</button>
        <DeadlineForm deadline={deadline} />
      </div>
      {adding && (
        <Dialog title='Add a logo' onClose={() => setAdding(false)}>
          <LogoForm onSave={(fields) => api.createLogo(fields)} onDone={() => setAdding(false)} />
        </Dialog>
      )}
    </section>
  )
}
