// Add or edit a logo: title, image URL (with a live preview), description, author. The API
// validates (the form sets `noValidate`, so the browser's own bubbles never hide the server's
// rules); its answer shows next to each field it is about, and focus moves to the first one.
import { useId, useRef, useState, type FormEvent } from 'react'
import type { Logo } from 'logo-sync/client'
import { LogoImage } from '../LogoImage.js'
import { AdminError, type FieldName, type LogoFields } from './api.js'

type Values = Record<'title' | 'imageUrl' | 'description' | 'author', string>

/** Editing `logo` sends only what changed; adding one (no `logo`) sends the whole. */
type Props = { onDone: () => void } & (
  | { logo: Logo, onSave: (fields: Partial<LogoFields>) => Promise<unknown> }
  | { logo?: undefined, onSave: (fields: LogoFields) => Promise<unknown> }
)

const looksLikeUrl = (s: string) => /^https?:\/\/\S+$/.test(s)

export function LogoForm (props: Props) {
  const { logo, onDone } = props
  const id = useId()
  const form = useRef<HTMLFormElement>(null)
  const [values, setValues] = useState<Values>({
    title: logo?.title ?? '',
    imageUrl: logo?.imageUrl ?? '',
    description: logo?.description ?? '',
    author: logo?.author ?? ''
  })
  const [errors, setErrors] = useState<Partial<Record<FieldName, string>>>({})
  const [general, setGeneral] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  const set = (field: keyof Values) => (event: { target: { value: string } }) => {
    setValues((v) => ({ ...v, [field]: event.target.value }))
    // The message was about the old value.
    if (errors[field]) setErrors((e) => ({ ...e, [field]: undefined }))
  }

  async function submit (event: FormEvent) {
    event.preventDefault()
    const edits = props.logo ? changes(props.logo, values) : null
    // Nothing changed: nothing to send (an empty PATCH is a 400).
    if (edits && Object.keys(edits).length === 0) return onDone()
    setBusy(true)
    setErrors({})
    setGeneral(null)
    try {
      await (props.logo ? props.onSave(edits!) : props.onSave(created(values)))
      onDone()
    } catch (err) {
      const e = err as AdminError
      const fields = e.fields ?? {}
      setErrors(fields)
      if (e.message) setGeneral(e.message)
      const first = (['title', 'imageUrl', 'description', 'author'] as const).find((f) => fields[f])
      if (first) form.current?.querySelector<HTMLElement>(`[name=${first}]`)?.focus()
    } finally {
      setBusy(false)
    }
  }

  const field = (name: keyof Values, label: string, opts: { type?: string, multiline?: boolean, required?: boolean, hint?: string } = {}) => {
    const inputId = `${id}-${name}`
    const errorId = `${inputId}-error`
    const hintId = `${inputId}-hint`
    const describedBy = [opts.hint ? hintId : '', errors[name] ? errorId : ''].filter(Boolean).join(' ') || undefined
    const common = {
      id: inputId,
      name,
      value: values[name],
      onChange: set(name),
      'aria-invalid': errors[name] ? true : undefined,
      'aria-describedby': describedBy,
      'aria-required': opts.required || undefined
    }
    return (
      <div className={`field${errors[name] ? ' invalid' : ''}`}>
        <label htmlFor={inputId}>{label}{opts.required && <span aria-hidden='true'> *</span>}</label>
        {opts.multiline ? <textarea rows={3} {...common} /> : <input type={opts.type ?? 'text'} {...common} />}
        {opts.hint && <p id={hintId} className='hint'>{opts.hint}</p>}
        {errors[name] && <p id={errorId} className='field-error'>{errors[name]}</p>}
      </div>
    )
  }

  return (
    <form ref={form} className='logo-form' onSubmit={submit} noValidate>
      <div className='fields'>
        {field('title', 'Title', { required: true })}
        {field('imageUrl', 'Image URL', { type: 'url', required: true, hint: 'An http:// or https:// address of the image.' })}
        {field('description', 'Description', { multiline: true })}
        {field('author', 'Author')}
      </div>
      <figure className='preview'>
        {looksLikeUrl(values.imageUrl.trim())
          ? <LogoImage src={values.imageUrl.trim()} title={values.title.trim() || 'New logo'} />
          : <div className='art empty'>No image yet</div>}
        <figcaption>Preview</figcaption>
      </figure>
      {general && <p className='problem' role='alert'>{general}</p>}
      {/* Field errors are announced too, once, when a save is refused. */}
      <p className='sr-only' role='status'>{Object.values(errors).filter(Boolean).length > 0 ? 'Not saved: check the fields marked.' : ''}</p>
      <div className='buttons'>
        <button type='button' className='secondary' onClick={onDone}>Cancel</button>
        <button type='submit' className='primary' disabled={busy}>{busy ? 'Saving…' : 'Save'}</button>
      </div>
    </form>
  )
}

/** A new logo: empty optional fields are left out. */
function created (v: Values): LogoFields {
  const fields: LogoFields = { title: v.title.trim(), imageUrl: v.imageUrl.trim() }
  if (v.description.trim()) fields.description = v.description.trim()
  if (v.author.trim()) fields.author = v.author.trim()
  return fields
}

/** Only what changed (PATCH); a cleared optional field is `null`, which removes it. */
function changes (logo: Logo, v: Values): Partial<LogoFields> {
  const out: Partial<LogoFields> = {}
  if (v.title.trim() !== logo.title) out.title = v.title.trim()
  if (v.imageUrl.trim() !== logo.imageUrl) out.imageUrl = v.imageUrl.trim()
  for (const key of ['description', 'author'] as const) {
    const next = v[key].trim()
    if (next !== (logo[key] ?? '')) out[key] = next === '' ? null : next
  }
  return out
}
