// A modal <dialog>: the browser traps focus inside it and closes it on Escape; focus goes back
// to what was focused before it opened (the button that opened it), so keyboard users keep
// their place in the page.
import { useEffect, useId, useRef, type ReactNode } from 'react'

interface Props {
  /** The heading, which also names the dialog for assistive technology. */
  title: string
  onClose: () => void
  children: ReactNode
  className?: string
}

export function Dialog ({ title, onClose, children, className }: Props) {
  const ref = useRef<HTMLDialogElement>(null)
  const headingId = useId()
  const closeRef = useRef(onClose)
  closeRef.current = onClose

  useEffect(() => {
    const dialog = ref.current!
    const before = document.activeElement as HTMLElement | null
    dialog.showModal()
    // Escape fires `cancel`; closing is the parent's decision (it unmounts us).
    const cancel = (event: Event) => {
      event.preventDefault()
      closeRef.current()
    }
    dialog.addEventListener('cancel', cancel)
    return () => {
      dialog.removeEventListener('cancel', cancel)
      if (dialog.open) dialog.close()
      // The opener may have re-rendered away (a renamed logo's button): only refocus it if it is still there.
      if (before?.isConnected) before.focus()
    }
  }, [])

  return (
    <dialog ref={ref} className={`dialog ${className ?? ''}`} aria-labelledby={headingId}>
      <h2 id={headingId}>{title}</h2>
      {children}
    </dialog>
  )
}
