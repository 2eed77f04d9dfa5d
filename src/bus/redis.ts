// Redis pub/sub adapter of the Bus port (scaled mode). Publishing uses the shared command
// client; receiving goes through a ChannelReceiver (SUBSCRIBE on a connection of its own, or
// SSUBSCRIBE on the shard that owns the channel in a Cluster). Both are handed in by the caller.
import { GOODBYE_TIMEOUT_MS, type RedisClient } from '../redis-client.js'
import type { ChannelReceiver } from './redis-channels.js'
import { withTimeout } from '../timeout.js'
import type { Bus, BusEvent, BusLog, BusMessage } from './types.js'

export interface RedisBusOptions {
  /** The shared command client (fails fast while Redis is away: no offline queue). */
  publisher: RedisClient
  /** Receives the channel and says after every (re)subscription (src/bus/redis-receivers.ts). */
  receiver: ChannelReceiver
  /** How a payload is published; default PUBLISH on `publisher` (a Cluster uses shardedPublisher). */
  send?: (payload: string) => Promise<unknown>
  /** Pub/sub channel, already prefixed with REDIS_KEY_PREFIX. */
  channel: string
  /** This replica's id, stamped on every message. */
  origin: string
  log: BusLog
  /** The longest the resync notice waits for its gates (holdResyncNotice); default 5 s. */
  resyncGateMs?: number
  /** A publish that takes longer than this is treated as failed (the write is committed anyway). */
  publishTimeoutMs?: number
  /** How long the first subscription may take before boot fails. */
  connectTimeoutMs?: number
}

/** Wire envelope: a change, or a notice that some replica lost a publish and everyone must resync. */
type Envelope = BusMessage | { resync: true, origin: string, publishedAt: number }

const isBusMessage = (v: Envelope): v is BusMessage =>
  typeof (v as BusMessage).event?.kind === 'string' && typeof v.origin === 'string' && typeof v.publishedAt === 'number'

/**
 * Starts the receiver and resolves once the channel is subscribed. Afterwards the receiver
 * resubscribes by itself every time its connection comes back and the adapter calls the `onResync`
 * handlers, because anything published while it was away is lost (pub/sub keeps no history).
 * A publish that fails is logged by the caller; the adapter also remembers it and, once Redis
 * answers again, publishes a resync notice so every replica re-reads what it may have missed.
 */
export async function connectRedisBus (opts: RedisBusOptions): Promise<Bus> {
  const { publisher, receiver, channel, origin, log } = opts
  const publishTimeoutMs = opts.publishTimeoutMs ?? 1000
  const handlers = new Set<(m: BusMessage) => void>()
  const resyncHandlers = new Set<() => void>()
  let subscribedOnce = false
  let closed = false
  let firstSubscribed!: () => void
  const ready = new Promise<void>((resolve) => { firstSubscribed = resolve })
  let owesResyncNotice = false

  const fireResync = () => {
    for (const h of resyncHandlers) {
      try { h() } catch (err) { log.error({ err }, 'bus resync handler failed') }
    }
  }

  const onPayload = (payload: string) => {
    let envelope: Envelope
    try {
      envelope = JSON.parse(payload) as Envelope
    } catch (err) {
      log.warn({ err, channel }, 'ignoring a bus message that is not JSON')
      return
    }
    if ('resync' in envelope) {
      log.info({ from: envelope.origin }, 'a replica missed a publish; resyncing')
      fireResync()
      return
    }
    if (!isBusMessage(envelope)) {
      log.warn({ channel }, 'ignoring a bus message of unknown shape')
      return
    }
    for (const h of handlers) {
      try { h(envelope) } catch (err) { log.error({ err, event: envelope.event.kind }, 'bus handler failed') }
    }
  }

  const send = opts.send ?? ((payload: string): Promise<unknown> => publisher.publish(channel, payload))

  // A lost publish means other replicas missed it too: tell them once Redis answers.
  // Gates (the cache's L2 replay) hold the notice back, at most resyncGateMs.
  const gates = new Set<() => Promise<void>>()
  const resyncGateMs = opts.resyncGateMs ?? 5000
  let noticeInFlight = false
  const sendResyncNotice = () => {
    if (!owesResyncNotice || closed || noticeInFlight) return
    noticeInFlight = true
    const held = Promise.all([...gates].map((gate) => gate().catch(() => {})))
    withTimeout(held, resyncGateMs, 'resync gates').catch(() => {})
      .then(() => {
        const notice: Envelope = { resync: true, origin, publishedAt: Date.now() }
        return withTimeout(send(JSON.stringify(notice)), publishTimeoutMs, 'resync notice')
      })
      .then(() => { owesResyncNotice = false }, () => { /* still down; retried on the next 'ready' */ })
      .finally(() => { noticeInFlight = false })
  }
  publisher.on('ready', sendResyncNotice)

  // Every (re)subscription: the first resolves `ready`; any later one follows a gap, so resync.
  let outage = false
  receiver.start({
    message (payload) { if (!closed) onPayload(payload) },
    subscribed () {
      if (closed) return
      outage = false
      sendResyncNotice() // Redis answers again: a notice still owed goes out now
      if (!subscribedOnce) { subscribedOnce = true; firstSubscribed(); return }
      log.info({ channel }, 'bus resubscribed after a gap; resyncing subscribers')
      fireResync()
    },
    lost (err) {
      if (closed) return
      if (!outage) log.warn({ err }, 'bus subscriber lost Redis; retrying in the background')
      outage = true
    }
  })

  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000
  try {
    await withTimeout(ready, connectTimeoutMs, `Redis bus subscription to ${channel}`)
  } catch (err) {
    closed = true
    publisher.off('ready', sendResyncNotice)
    await receiver.close(publishTimeoutMs)
    throw err
  }

  async function publish (event: BusEvent): Promise<void> {
    if (closed) throw new Error('bus is closed')
    const message: BusMessage = { event, origin, publishedAt: Date.now() }
    try {
      await withTimeout(send(JSON.stringify(message)), publishTimeoutMs, 'bus publish')
    } catch (err) {
      owesResyncNotice = true
      throw err
    }
    if (owesResyncNotice) sendResyncNotice()
  }

  return {
    kind: 'redis',
    publish,
    // Pub/sub is outside the store's transaction: publish once the commit is done.
    afterCommit: publish,
    subscribe (handler) {
      handlers.add(handler)
      return () => { handlers.delete(handler) }
    },
    holdResyncNotice (gate) {
      gates.add(gate)
      return () => { gates.delete(gate) }
    },
    onResync (handler) {
      resyncHandlers.add(handler)
      return () => { resyncHandlers.delete(handler) }
    },
    async ping () {
      await withTimeout(Promise.all([publisher.ping(), receiver.ping()]), publishTimeoutMs, 'bus ping')
    },
    async close () {
      if (closed) return
      closed = true
      handlers.clear()
      resyncHandlers.clear()
      publisher.off('ready', sendResyncNotice)
      await receiver.close(GOODBYE_TIMEOUT_MS)
    }
  }
}
