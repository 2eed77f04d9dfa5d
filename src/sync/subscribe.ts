// The subscribe handshake: access and limits, then `subscribed` and the state (unless the
// client's `since` is current), then the changes that arrived while the state was being read.
import { ErrorCode, type RequestId, type SubscribeFrame } from '../protocol.js'
import { filterVotesBatch, makeBroadcast, type Broadcast } from './broadcast.js'
import { isWholeChannel, parseChannel, readAccess } from './channels.js'
import type { Subscription, SyncConnection } from './connection.js'
import type { SyncHub } from './hub.js'
import { readVersioned } from './snapshots.js'
import type { SinceOutcome } from './stats.js'

/** `{ id }` when the client gave one: replies echo the request id, or carry none. */
export const withId = (id: RequestId | undefined) => (id === undefined ? {} : { id })

export async function subscribe (hub: SyncHub, conn: SyncConnection, frame: SubscribeFrame): Promise<void> {
  const { channel: name, id } = frame
  const channel = parseChannel(name)
  if (!channel) {
    hub.error(conn, ErrorCode.unknownChannel, `no channel named ${name}`, id, name)
    return
  }
  const access = readAccess(channel, conn.user)
  if (access !== 'ok') {
    hub.error(conn, access, access === 'unauthorized' ? 'this channel needs a token' : "another user's channel", id, name)
    return
  }
  const previous = conn.subs.get(name)
  if (!previous && conn.subs.size >= hub.limits.maxSubscriptions) {
    hub.error(conn, ErrorCode.tooManySubscriptions, `at most ${hub.limits.maxSubscriptions} subscriptions per connection`, id, name)
    return
  }

  // Subscribed from now on, so no change is missed while the state is read; changes wait in
  // `buffered` until the state has been sent. A repeat subscribe starts over (a resync).
  const sub: Subscription = { channel, versioned: !isWholeChannel(channel), version: null, loading: true, buffered: new Map(), snapshotSeq: 0 }
  conn.subs.set(name, sub)
  conn.forget(name)
  hub.join(name, conn)
  const wanted = () => conn.subs.get(name) === sub && !conn.closing

  let outcome: SinceOutcome
  let keep: (b: Broadcast) => Broadcast | null = (b) => b
  if (channel.kind === 'logos' || channel.kind === 'userVotes') {
    const result = await hub.readWhile(() => hub.whole.snapshot(channel), wanted, { channel: name })
    if (!result || !wanted()) return
    conn.send({ type: 'subscribed', ...withId(id), channel: name, version: null })
    conn.push(makeBroadcast(name, 'snapshot', null, result.data))
    sub.snapshotSeq = result.seq
    outcome = 'none'
    const held = channel.kind === 'logos' ? new Map((result.data as { _id: string, version: number }[]).map((l) => [l._id, l.version])) : null
    keep = (b) => {
      if (b.readSeq !== undefined) return b.readSeq > result.seq ? b : null
      if (!held) return b
      if (b.type === 'votes') return filterVotesBatch(b, (itemId, v) => v > (held.get(itemId) ?? 0))
      if (b.itemId === undefined || b.version === null) return b
      const version = held.get(b.itemId)
      if (version === undefined) return b.type === 'deleted' ? null : b
      return b.version > version ? b : null
    }
  } else {
    const state = await hub.readWhile(() => readVersioned(channel, hub.reads, hub.feed), wanted, { channel: name })
    if (!state || !wanted()) return
    conn.send({ type: 'subscribed', ...withId(id), channel: name, version: state.version })
    const since = frame.since ?? null
    if (state.version !== null && since !== null && since >= state.version) {
      outcome = 'current'
    } else {
      conn.push(makeBroadcast(name, state.type, state.version, state.data))
      outcome = since === null ? 'none' : 'stale'
    }
    sub.version = state.version
  }
  hub.stats.resync(outcome)

  sub.loading = false
  const buffered = [...sub.buffered.values()]
  sub.buffered.clear()
  for (const b of buffered) {
    const kept = keep(b)
    if (kept) conn.deliver(kept)
  }
}
