// How many people have the gallery open right now, across every replica (`presence.logos`).
// The number is an <output> named "people here now", so assistive technology reads it with its
// meaning; it is not announced on every change (aria-live off): people coming and going is not
// worth interrupting anyone for. Nothing shows where the server has no presence channel.
import { useSync } from 'logo-sync/react'

export function PresenceCount () {
  const { data: count, error } = useSync<number>('presence.logos')
  if (error || typeof count !== 'number') return null
  return (
    <p className='presence' data-testid='presence'>
      <span aria-hidden='true' className='presence-dot' />
      <output aria-label='people here now' aria-live='off'>{count}</output>
      <span aria-hidden='true'>{count === 1 ? 'person' : 'people'} here now</span>
    </p>
  )
}
