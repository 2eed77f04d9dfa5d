// Set or clear the voting deadline. The input is a date-time in the admin's own time zone (the
// browser's `datetime-local`); the server stores one UTC instant, which is shown back under the
// field both ways, so nobody wonders which zone they typed in.
import { useEffect, useId, useRef, useState, type FormEvent } from 'react'
import { AdminError } from './api.js'
import { useAdmin } from './context.js'

const pad = (n: number) => String(n).padStart(2, '0')

/** An instant as `datetime-local` wants it: local wall-clock time, to the minute. */
export function toLocalInput (iso: string): string {
  const d = new Date(iso)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

const zone = () => Intl.DateTimeFormat().resolvedOptions().timeZone

export function DeadlineForm ({ deadline }: { deadline: string | null | undefined }) {
  const api = useAdmin()
  const id = useId()
  const input = useRef<HTMLInputElement>(null)
  const [value, setValue] = useState(deadline ? toLocalInput(deadline) : '')
  const [dirty, setDirty] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [saved, setSaved] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  // Another admin's change shows up here too, unless this admin is in the middle of typing one.
  useEffect(() => {
    if (!dirty) setValue(deadline ? toLocalInput(deadline) : '')
  }, [deadline, dirty])

  async function save (next: string | null) {
    setBusy(true)
    setError(null)
    setSaved(null)
    try {
      const voting = await api!.setDeadline(next)
      setDirty(false)
      setSaved(voting.deadline ? 'Deadline saved.' : 'Deadline cleared: voting stays open.')
    } catch (err) {
      const e = err as AdminError
      setError(e.fields?.deadline ?? e.message)
      input.current?.focus()
    } finally {
      setBusy(false)
    }
  }

  function submit (event: FormEvent) {
    event.preventDefault()
    if (!value) {
      setError('Pick a date and time, or clear the deadline.')
      input.current?.focus()
      return
    }
    // `new Date('YYYY-MM-DDTHH:mm')` reads it as local time: the instant the admin meant.
    const at = new Date(value)
    if (Number.isNaN(at.getTime())) {
      setError('Not a date and time.')
      return
    }
    void save(at.toISOString())
  }

  if (!api) return null
  const inputId = `${id}-deadline`
  const stored = `${id}-stored`
  const errorId = `${id}-error`
  return (
    <form className='deadline-form' onSubmit={submit} noValidate>
      <div className={`field${error ? ' invalid' : ''}`}>
        <label htmlFor={inputId}>Voting deadline</label>
        <input
          ref={input}
          id={inputId}
          type='datetime-local'
          value={value}
          onChange={(e) => { setValue(e.target.value); setDirty(true); setError(null) }}
          aria-invalid={error ? true : undefined}
          aria-describedby={[stored, error ? errorId : ''].filter(Boolean).join(' ')}
        />
        <p id={stored} className='hint' data-testid='stored-deadline'>
          {deadline === undefined
            ? 'Loading…'
            : deadline === null
              ? `No deadline set. Times are in your time zone (${zone()}).`
              : <>Stored: <time dateTime={deadline}>{new Date(deadline).toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'long' })}</time> ({deadline})</>}
        </p>
        {error && <p id={errorId} className='field-error'>{error}</p>}
      </div>
      <div className='buttons'>
        <button type='submit' className='primary' disabled={busy}>Set deadline</button>
        <button type='button' className='secondary' disabled={busy || deadline === null} onClick={() => { void save(null) }}>Clear deadline</button>
      </div>
      <p className='sr-only' role='status'>{saved ?? ''}</p>
    </form>
  )
}
