// PostgreSQL LISTEN/NOTIFY adapter of the Bus port (scaled on PostgreSQL alone, no Redis).
// Changes are published inside the store's write transactions (a store transaction step), so
// a change is announced if and only if it commits: no "committed but the publish failed"
// window, hence no resync notices. Receiving takes a dedicated connection outside the store's
// pool that LISTENs, reconnects by itself and, after a gap (notifications sent meanwhile are
// lost to it), tells subscribers to resync, as the Redis bus does.
import pg from 'pg'
import type { Logo } from '../domain.js'
import type { TransactionStep } from '../store/types.js'
import { isRef, pack, unpack, type Envelope } from './notify-payload.js'
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

/** How long closing the listening connection may take before it is left behind. */
const CLOSE_TIMEOUT_MS = 1000

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`

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
  /** The connection that LISTENs now; null while reconnecting. */
  let listener: pg.Client | null = null
  let reconnecting = false

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

  const onNotification = (msg: pg.Notification) => {
    if (closed || msg.channel !== channel || msg.payload === undefined) return
    const envelope = unpack(msg.payload)
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

  async function openListener (): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString,
      keepAlive: true,
      connectionTimeoutMillis: timeoutMs,
      application_name: `logo-sync bus ${origin}`.slice(0, 63)
    })
    client.on('notification', onNotification)
    client.on('error', (err) => lost(client, err))
    client.on('end', () => lost(client))
    try {
      await client.connect()
      await client.query(`LISTEN ${quoteIdent(channel)}`)
      return client
    } catch (err) {
      client.end().catch(() => {})
      throw err
    }
  }

  /** The listening connection broke (or failed its heartbeat): reconnect, then resync. */
  function lost (client: pg.Client, err?: Error) {
    if (client !== listener) return // an old or never-listening connection
    listener = null
    client.end().catch(() => {})
    if (closed) return
    log.warn({ err }, 'bus lost its PostgreSQL listening connection; reconnecting')
    void reconnect()
  }

  async function reconnect (): Promise<void> {
    if (reconnecting) return
    reconnecting = true
    let delay = retry.minMs
    for (;;) {
      if (closed) break // close() ran while this loop waited
      try {
        const client = await openListener()
        if (closed) { client.end().catch(() => {}); break }
        listener = client
        log.info({ channel }, 'bus listening again after a gap; resyncing subscribers')
        fireResync()
        break
      } catch (err) {
        if (delay === retry.minMs) log.warn({ err }, 'bus could not reach PostgreSQL; retrying in the background')
        await new Promise((resolve) => setTimeout(resolve, delay))
        delay = Math.min(delay * 2, retry.maxMs)
      }
    }
    reconnecting = false
  }

  // TCP keepalive notices a dead peer only after minutes; a query every heartbeat notices sooner.
  const heartbeat = setInterval(() => {
    const client = listener
    if (!client || closed) return
    withTimeout(client.query('SELECT 1'), timeoutMs, 'bus heartbeat').catch((err: Error) => lost(client, err))
  }, heartbeatMs)
  heartbeat.unref()

  const opening = openListener()
  try {
    listener = await withTimeout(opening, timeoutMs, `PostgreSQL bus LISTEN on ${channel}`)
  } catch (err) {
    closed = true
    clearInterval(heartbeat)
    opening.then((client) => client.end(), () => {}).catch(() => {})
    throw err
  }

  // The publish of every committed change: inside its transaction, before COMMIT. Kept for the
  // store's whole life (even after close), so no write can commit unannounced during shutdown.
  const step: TransactionStep = async (changes, tx) => {
    for (const payload of pack(changes, origin, Date.now())) await tx.notify(channel, payload)
  }
  store.addTransactionStep(step)

  const connected = () => {
    if (closed) throw new Error('bus is closed')
    if (!listener) throw new Error('bus is reconnecting to PostgreSQL')
    return listener
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
      clearInterval(heartbeat)
      handlers.clear()
      resyncHandlers.clear()
      const client = listener
      listener = null
      // end() waits for the server to close its side, which a frozen server never does: bounded,
      // so a shutdown finishes whatever state PostgreSQL is in.
      if (client) await withTimeout(client.end(), CLOSE_TIMEOUT_MS, 'bus close').catch(() => {})
    }
  }
}
