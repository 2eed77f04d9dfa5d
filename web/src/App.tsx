// The gallery: the seed's VotePage, grown into a page people can use.
import { useEffect, useSyncExternalStore } from 'react'
import type { Logo } from 'logo-sync/client'
import { useSync, useSyncClient } from 'logo-sync/react'
import { AdminPanel } from './admin/AdminPanel.js'
import { LogoAdminActions } from './admin/LogoAdminActions.js'
import { ConnectionBadge } from './ConnectionBadge.js'
import { Deadline, useVotingOpen } from './Deadline.js'
import { LogoCard } from './LogoCard.js'
import { PresenceCount } from './PresenceCount.js'
import { SignIn } from './SignIn.js'
import type { SessionStore } from './session.js'
import { VoteAnnouncer } from './VoteAnnouncer.js'

export function App ({ session }: { session: SessionStore }) {
  const current = useSyncExternalStore(session.subscribe, session.getSnapshot)
  const client = useSyncClient()
  const { data: logos, error } = useSync<Logo[]>('logos', undefined, { revalidateOnMount: true, refreshInterval: 5_000 })
  const { data: deadline } = useSync<string | null>('voting.deadline', undefined, { revalidateOnMount: true, refreshInterval: 5_000 })
  const open = useVotingOpen(deadline ?? null)

  // The server's clock from REST too, before the socket's welcome arrives.
  useEffect(() => { client.getVoting().catch(() => {}) }, [client])

  return (
    <div className='page'>
      <header className='top'>
        <div>
          <h1>Logo Gallery</h1>
          <p className='tagline'>Vote for your favourite logo. Counts change live on every open page.</p>
        </div>
        <div className='live-info'>
          <ConnectionBadge />
          <PresenceCount />
        </div>
      </header>
      <main>
        <section className='bar' aria-label='Voting and sign-in'>
          <Deadline deadline={deadline} />
          <SignIn session={session} />
        </section>
        <AdminPanel deadline={deadline} />
        <VoteAnnouncer logos={logos} />
        {error && !logos && <p className='notice error' role='alert'>Could not load the logos: {error.message}</p>}
        {!logos && !error && <p className='notice'>Loading logos…</p>}
        {logos?.length === 0 && <p className='notice'>No logos yet.</p>}
        {current
          ? <Gallery logos={logos} signedInAs={current.name} votingOpen={open} />
          : <Gallery logos={logos} signedInAs={null} votingOpen={open} />}
      </main>
      <footer className='foot'>
        Live over <code>/sync</code> with <code>logo-sync/react</code> · REST at <a href='/logos'>/logos</a>
        {' '}· <a href='/docs'>API docs</a>
      </footer>
    </div>
  )
}

/** One mounted component per identity, so the private channel is a plain hook call. */
function Gallery ({ logos, signedInAs, votingOpen }: { logos: Logo[] | undefined, signedInAs: string | null, votingOpen: boolean }) {
  return signedInAs
    ? <MyGallery logos={logos} sub={signedInAs} votingOpen={votingOpen} />
    : <Grid logos={logos} myVotes={null} votingOpen={votingOpen} />
}

function MyGallery ({ logos, sub, votingOpen }: { logos: Logo[] | undefined, sub: string, votingOpen: boolean }) {
  const { data: mine } = useSync<string[]>(`users.${sub}.votes`, undefined, { revalidateOnMount: true, fallbackData: [] })
  return <Grid logos={logos} myVotes={mine} votingOpen={votingOpen} />
}

function Grid ({ logos, myVotes, votingOpen }: { logos: Logo[] | undefined, myVotes: string[] | null, votingOpen: boolean }) {
  return (
    <div className='logo-grid'>
      {logos?.map((logo) => (
        <LogoCard key={logo._id} logo={logo} voted={myVotes ? myVotes.includes(logo._id) : null} votingOpen={votingOpen} actions={(live) => <LogoAdminActions logo={live} />} />
      ))}
    </div>
  )
}
