// Vote counts for screen readers: one polite live region for the page, not one per card, and
// not a message per frame. Changes are gathered until the counts have been still for a moment
// (or at most every few seconds during a steady stream), then read out as one sentence.
import { useEffect, useRef, useState } from 'react'
import type { Logo } from 'logo-sync/client'

const QUIET_MS = 1_500
const MAX_WAIT_MS = 5_000
const NAMED = 3

export function VoteAnnouncer ({ logos }: { logos: Logo[] | undefined }) {
  const [message, setMessage] = useState('')
  const announced = useRef<Map<string, number> | null>(null)
  const latest = useRef<Logo[]>([])
  const timers = useRef<{ quiet?: ReturnType<typeof setTimeout>, cap?: ReturnType<typeof setTimeout> }>({})

  useEffect(() => {
    if (!logos) return
    latest.current = logos
    if (!announced.current) {
      // What the page first shows is not news.
      announced.current = new Map(logos.map((l) => [l._id, l.totalVotes]))
      return
    }
    const flush = () => {
      clearTimeout(timers.current.quiet)
      clearTimeout(timers.current.cap)
      timers.current = {}
      const before = announced.current!
      const moved = latest.current.filter((l) => before.has(l._id) && before.get(l._id) !== l.totalVotes)
      announced.current = new Map(latest.current.map((l) => [l._id, l.totalVotes]))
      if (moved.length === 0) return
      const named = moved.slice(0, NAMED).map((l) => `${l.title} ${l.totalVotes} ${l.totalVotes === 1 ? 'vote' : 'votes'}`)
      const more = moved.length > NAMED ? `, and ${moved.length - NAMED} more changed` : ''
      setMessage(`Votes now: ${named.join(', ')}${more}.`)
    }
    clearTimeout(timers.current.quiet)
    timers.current.quiet = setTimeout(flush, QUIET_MS)
    timers.current.cap ??= setTimeout(flush, MAX_WAIT_MS)
  }, [logos])

  useEffect(() => () => {
    clearTimeout(timers.current.quiet)
    clearTimeout(timers.current.cap)
  }, [])

  return <div className='sr-only' role='status' aria-live='polite' aria-atomic='true' data-testid='vote-announcer'>{message}</div>
}
