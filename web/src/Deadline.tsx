// The voting deadline with a countdown on the server's clock (from /voting and the socket's
// welcome/pong), so a client whose own clock is wrong still shows the right time left.
import { useServerTime } from 'logo-sync/react'

const pad = (n: number) => String(n).padStart(2, '0')

export function formatLeft (ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  const days = Math.floor(s / 86_400)
  const clock = `${pad(Math.floor((s % 86_400) / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`
  return days > 0 ? `${days}d ${clock}` : clock
}

const when = (iso: string) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })

export function useVotingOpen (deadline: string | null): boolean {
  const now = useServerTime(1_000)
  return deadline === null || Date.parse(deadline) > now
}

export function Deadline ({ deadline }: { deadline: string | null | undefined }) {
  const now = useServerTime(1_000)
  if (deadline === undefined) return <div className='deadline' data-testid='countdown'>Loading the deadline…</div>
  if (deadline === null) {
    return <div className='deadline open' data-testid='countdown'>Voting is open — no deadline set</div>
  }
  const left = Date.parse(deadline) - now
  if (left <= 0) {
    return <div className='deadline closed' data-testid='countdown'>Voting closed <small>({when(deadline)})</small></div>
  }
  return (
    <div className='deadline open' data-testid='countdown'>
      Voting ends in <strong className='clock'>{formatLeft(left)}</strong> <small>({when(deadline)})</small>
    </div>
  )
}
