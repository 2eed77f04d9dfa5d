// The seed's LogoCard (useSync on `logos.<id>` and `logos.<id>.votes`), with a vote button.
import { useState, type ReactNode } from 'react'
import type { Logo, SyncError } from 'logo-sync/client'
import { useSync, useSyncClient } from 'logo-sync/react'
import { LogoImage } from './LogoImage.js'

interface Props {
  logo: Logo
  /** Whether the signed-in user voted for it; null when nobody is signed in. */
  voted: boolean | null
  votingOpen: boolean
  /** More controls for the card (an admin's edit and delete), given the live logo. */
  actions?: (logo: Logo) => ReactNode
}

export function LogoCard ({ logo, voted, votingOpen, actions }: Props) {
  const client = useSyncClient()
  const { data: updatedLogo } = useSync<Logo>('logos', logo._id, { initialData: logo, revalidateOnFocus: true })
  const { data: voteCount, mutate: mutateCount } = useSync<number>(`logos.${logo._id}.votes`, undefined, { fallbackData: logo.totalVotes, refreshInterval: 2_000 })
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<string | null>(null)

  async function toggle () {
    setBusy(true)
    setProblem(null)
    try {
      // The count moves at once; the server's answer settles it (its later push changes
      // nothing), an error (409 voting_closed, no network) takes it back.
      const step = voted ? -1 : 1
      await mutateCount(async () => (await (voted ? client.unvote(logo._id) : client.vote(logo._id))).totalVotes, {
        optimisticData: (count) => Math.max(0, (count ?? 0) + step),
        revalidate: false
      })
    } catch (err) {
      setProblem(explain(err as SyncError))
    } finally {
      setBusy(false)
    }
  }

  const label = voted === null ? 'Sign in to vote' : !votingOpen ? 'Voting closed' : voted ? 'Voted ✓ — undo' : 'Vote'
  return (
    <article className={`logo-card${voted ? ' voted' : ''}`} data-logo-id={logo._id}>
      <LogoImage src={updatedLogo.imageUrl} title={updatedLogo.title} />
      <div className='body'>
        <h2>{updatedLogo.title}</h2>
        {updatedLogo.author && <p className='author'>by {updatedLogo.author}</p>}
        {updatedLogo.description && <p className='description'>{updatedLogo.description}</p>}
      </div>
      <div className='actions'>
        {/* Not a live region: the page's VoteAnnouncer reads changes out, gathered, not per frame. */}
        <span className='votes'><strong data-testid='vote-count'>{voteCount}</strong> {voteCount === 1 ? 'vote' : 'votes'}</span>
        <button type='button' onClick={toggle} disabled={busy || voted === null || !votingOpen} className={voted ? 'secondary' : 'primary'}>
          {busy ? '…' : label}
        </button>
      </div>
      {problem && <p className='problem' role='alert'>{problem}</p>}
      {actions?.(updatedLogo)}
    </article>
  )
}

function explain (err: SyncError): string {
  if (err.serverCode === 'voting_closed') return 'Voting has closed.'
  if (err.status === 429) return 'Too many votes at once; try again in a moment.'
  if (err.status === 401) return 'Your sign-in expired; sign in again.'
  if (err.code === 'network_error') return 'The server cannot be reached; try again in a moment.'
  return err.message
}
