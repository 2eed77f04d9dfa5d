// PostgreSQL LISTEN/NOTIFY adapter of the Bus port (scaled on PostgreSQL alone, no Redis).
// Changes are published inside the store's write transactions (a store transaction step), so
// a change is announced if and only if it commits: no "committed but the publish failed"
// window, hence no resync notices. Receiving takes a dedicated connection outside the store's
// pool (src/pg-listener.ts) that LISTENs, reconnects by itself and, after a gap (notifications
// sent meanwhile are lost to it), tells subscribers to resync, as the Redis bus does.
import type { Logo } from '../domain.js'
import type { TransactionStep } from '../store/types.js'
import { isRef, pack, unpack, type Envelope } from './notify-payload.js'
import { openPgListener } from '../pg-listener.js'
import { withTimeout } from '../timeout.js'
import type { Bus, BusEvent, BusLog, BusMessage } from './types.js'

export interface PostgresBusOptions {
  connectionString: string
  /**
   * The store the bus publishes through (its write transactions take the bus's step) and reads
   * oversized changes back from. It must be on the same database as `connectionString`.
   */
  store: {
    addTransactionStep?: (step: TransactionStep) => () => void
    getLogo: (id: string) => Promise<Logo | null>
  }
  /** The NOTIFY channel (channelForSchema). */
  channel: string
  /** This replica's id, stamped on every message. */
  origin: string
  log: BusLog
  /** Bound on a publish outside a transaction, a ping, and the first connection. */
  timeoutMs?: number
  /** How often the listening connection is checked with a query (a dead peer may send no FIN). */
  heartbeatMs?: number
  /** Reconnect backoff: from `min` doubling up to `max` ms. */
  retry?: { minMs: number, maxMs: number }
}

/**
 * Attaches the publishing step to the store, opens the listening connection and resolves once it
 * LISTENs (rejects when it cannot within `timeoutMs`: boot fails, like the Redis bus).
 */
export async function connectPostgresBus (opts: PostgresBusOptions): Promise<Bus> {
  const { connectionString, store, channel, origin, log } = opts
  const timeoutMs = opts.timeoutMs ?? 5000
  const heartbeatMs = opts.heartbeatMs ?? 10_000
  const retry = opts.retry ?? { minMs: 50, maxMs: 2000 }
  if (!store.addTransactionStep) {
    throw new Error('the PostgreSQL bus publishes inside the store\'s transactions: it needs the PostgreSQL store')
  }
  const handlers = new Set<(m: BusMessage) => void>()
  const resyncHandlers = new Set<() => void>()
  let closed = false

  const fireResync = () => {
    for (const h of resyncHandlers) {
      try { h() } catch (err) { log.error({ err }, 'bus resync handler failed') }
    }
  }

  const deliver = (message: BusMessage) => {
    for (const h of handlers) {
      try { h(message) } catch (err) { log.error({ err, event: message.event.kind }, 'bus handler failed') }
    }
  }

  // Notifications are handled in arrival order (commit order). One that carries a reference
  // waits for its store read, and everything after it waits too, so order is never broken.
  let queue: Promise<void> = Promise.resolve()
  let queued = 0

  async function deliverResolved (envelope: Envelope): Promise<void> {
    for (const item of envelope.events) {
      let event: BusEvent | null = null
      if (!isRef(item)) {
        event = item
      } else {
        try {
          const logo = await store.getLogo(item.logoId)
          // Null: deleted since; its deletion comes next in commit order. Newer: just as good.
          if (logo && logo.version >= item.version) event = { kind: item.ref, logo }
          else if (logo) throw new Error(`read version ${logo.version}, announced ${item.version}`)
        } catch (err) {
          log.warn({ err, logoId: item.logoId }, 'could not read back a change announced by reference; resyncing')
          fireResync()
        }
      }
      if (event && !closed) deliver({ event, origin: envelope.origin, publishedAt: envelope.publishedAt })
    }
  }

  const onNotification = (_channel: string, payload: string) => {
    if (closed) return
    const envelope = unpack(payload)
    if (!envelope) {
      log.warn({ channel }, 'ignoring a bus notification of unknown shape')
      return
    }
    if (queued === 0 && !envelope.events.some(isRef)) {
      // The common case, handled at once: nothing is waiting ahead of it.
      for (const event of envelope.events) deliver({ event: event as BusEvent, origin: envelope.origin, publishedAt: envelope.publishedAt })
      return
    }
    queued++
    queue = queue.then(() => deliverResolved(envelope)).finally(() => { queued-- })
  }

  const listening = await openPgListener({
    connectionString,
    channels: [channel],
    name: 'bus',
    applicationName: `logo-sync bus ${origin}`,
    onNotification,
    onGap () {
      log.info({ channel }, 'bus listening again after a gap; resyncing subscribers')
      fireResync()
    },
    log,
    timeoutMs,
    checkEveryMs: heartbeatMs,
    retry
  })

  // The publish of every committed change: inside its transaction, before COMMIT. Kept for the
  // store's whole life (even after close), so no write can commit unannounced during shutdown.
  const step: TransactionStep = async (changes, tx) => {
    for (const payload of pack(changes, origin, Date.now())) await tx.notify(channel, payload)
  }
  store.addTransactionStep(step)

  const connected = () => {
    if (closed) throw new Error('bus is closed')
    const client = listening.client
    if (!client) throw new Error('bus is reconnecting to PostgreSQL')
    return client
  }

  return {
    kind: 'postgres',
    async publish (event) {
      // Outside any transaction, on the listening connection: its queries run in order, so one
      // publisher's events keep their order.
      const client = connected()
      for (const payload of pack([event], origin, Date.now())) {
        await withTimeout(client.query('SELECT pg_notify($1, $2)', [channel, payload]), timeoutMs, 'bus publish')
      }
    },
    // Sent with the commit by the transaction step: nothing left to do.
    async afterCommit () {},
    subscribe (handler) {
      handlers.add(handler)
      return () => { handlers.delete(handler) }
    },
    onResync (handler) {
      resyncHandlers.add(handler)
      return () => { resyncHandlers.delete(handler) }
    },
    // A publish is part of its commit: none is ever lost after one, so no notice is ever owed.
    holdResyncNotice () { return () => {} },
    async ping () {
      await withTimeout(connected().query('SELECT 1'), timeoutMs, 'bus ping')
    },
    async close () {
      if (closed) return
      closed = true
      handlers.clear()
      resyncHandlers.clear()
      // Bounded, so a shutdown finishes whatever state PostgreSQL is in.
      await listening.close()
    }
  }
}
