// Where the live connection stands, visibly: the page keeps working (REST polling) while it is down.
import { useEffect, useState } from 'react'
import { useSyncClient, useSyncStatus } from 'logo-sync/react'

const LABELS = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Offline'
} as const

export function ConnectionBadge () {
  const client = useSyncClient()
  const status = useSyncStatus()
  const [retryAt, setRetryAt] = useState<number | null>(null)
  const [now, setNow] = useState(Date.now())

  useEffect(() => client.on('status', (_s, info) => {
    setRetryAt(info.retryInMs !== undefined ? Date.now() + info.retryInMs : null)
  }), [client])
  useEffect(() => {
    if (status !== 'reconnecting') return
    const timer = setInterval(() => setNow(Date.now()), 250)
    return () => clearInterval(timer)
  }, [status])

  const seconds = retryAt !== null ? Math.ceil((retryAt - now) / 1000) : 0
  return (
    <div className='connection'>
      <span className={`status status-${status}`} data-testid='status' data-status={status} role='status'>
        <span className='dot' aria-hidden='true' />
        {LABELS[status]}
        {status === 'reconnecting' && seconds > 0 && <span className='retry'> (retry in {seconds}s)</span>}
      </span>
      {status === 'reconnecting' && (
        <button type='button' className='link' onClick={() => client.reconnect()}>Retry now</button>
      )}
      {status !== 'open' && status !== 'connecting' && <span className='hint'>Counts refresh over HTTP until the live connection is back.</span>}
    </div>
  )
}
