// Redis pub/sub adapter of the Bus port (scaled mode). Publishing uses the shared command
// connection; receiving needs a connection of its own (a subscribed Redis connection can run
// nothing else). Both are handed in by the caller, who also closes them.
import type { Redis } from 'ioredis'
import type { Bus, BusEvent, BusMessage } from './types.js'

interface BusLog {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

export interface RedisBusOptions {
  /** The shared command connection (fails fast while Redis is away: no offline queue). */
  publisher: Redis
  /**
   * A dedicated connection for SUBSCRIBE, created with `lazyConnect: true`,
   * `autoResubscribe: false` (this adapter resubscribes itself so it knows when to resync)
   * and an offline queue.
   */
  subscriber: Redis
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

function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

/**
 * Connects the subscriber and resolves once the channel is subscribed. Afterwards the adapter
 * resubscribes by itself every time the subscriber reconnects and then calls the `onResync`
 * handlers, because anything published while it was away is lost (pub/sub keeps no history).
 * A publish that fails is logged by the caller; the adapter also remembers it and, once Redis
 * answers again, publishes a resync notice so every replica re-reads what it may have missed.
 */
export async function connectRedisBus (opts: RedisBusOptions): Promise<Bus> {
  const { publisher, subscriber, channel, origin, log } = opts
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

  subscriber.on('message', (ch: string, payload: string) => {
    if (ch !== channel || closed) return
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
  })

  let outage = false
  subscriber.on('error', (err: Error) => {
    if (!outage) log.warn({ err }, 'bus subscriber lost Redis; retrying in the background')
    outage = true
  })

  // Every (re)connection: subscribe, then resync if this is not the first time.
  const subscribeNow = () => {
    if (closed) return
    subscriber.subscribe(channel).then(() => {
      outage = false
      if (!subscribedOnce) { subscribedOnce = true; firstSubscribed(); return }
      log.info({ channel }, 'bus resubscribed after a gap; resyncing subscribers')
      fireResync()
    }, (err: Error) => {
      // The connection dropped again before SUBSCRIBE answered; the next 'ready' retries.
      log.warn({ err }, 'bus resubscribe failed; will retry on reconnect')
    })
  }
  subscriber.on('ready', subscribeNow)

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
        return withTimeout(publisher.publish(channel, JSON.stringify(notice)), publishTimeoutMs, 'resync notice')
      })
      .then(() => { owesResyncNotice = false }, () => { /* still down; retried on the next 'ready' */ })
      .finally(() => { noticeInFlight = false })
  }
  publisher.on('ready', sendResyncNotice)

  if (subscriber.status === 'wait') subscriber.connect().catch(() => { /* 'error' is logged; ioredis retries */ })
  else if (subscriber.status === 'ready') subscribeNow()
  const connectTimeoutMs = opts.connectTimeoutMs ?? 10_000
  try {
    await withTimeout(ready, connectTimeoutMs, `Redis bus subscription to ${channel}`)
  } catch (err) {
    closed = true
    publisher.off('ready', sendResyncNotice)
    throw err
  }

  return {
    kind: 'redis',
    async publish (event: BusEvent) {
      if (closed) throw new Error('bus is closed')
      const message: BusMessage = { event, origin, publishedAt: Date.now() }
      try {
        await withTimeout(publisher.publish(channel, JSON.stringify(message)), publishTimeoutMs, 'bus publish')
      } catch (err) {
        owesResyncNotice = true
        throw err
      }
      if (owesResyncNotice) sendResyncNotice()
    },
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
      await withTimeout(Promise.all([publisher.ping(), subscriber.ping()]), publishTimeoutMs, 'bus ping')
    },
    async close () {
      if (closed) return
      closed = true
      handlers.clear()
      resyncHandlers.clear()
      publisher.off('ready', sendResyncNotice)
      if (subscriber.status === 'ready') {
        await withTimeout(subscriber.unsubscribe(channel), publishTimeoutMs, 'bus unsubscribe').catch(() => {})
      }
    }
  }
}
