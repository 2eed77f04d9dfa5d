// A connection of its own that LISTENs on PostgreSQL channels and keeps listening: the PostgreSQL
// bus and the PostgreSQL presence backend each hold one. It is outside any pool (a LISTEN belongs
// to its session). When it breaks, or fails its periodic check, it reconnects by itself with
// backoff and then calls `onGap`: notifications sent while it was away are lost to it, so its
// owner catches up (the bus resyncs its subscribers, presence reports again).
import pg from 'pg'
import { settleWithin, withTimeout } from './timeout.js'

export interface PgListenerOptions {
  connectionString: string
  /** The channels to LISTEN on (identifiers, at most 63 bytes). */
  channels: readonly string[]
  /** Who listens, for the logs (`bus`, `presence`): "<name> lost its PostgreSQL listening connection". */
  name: string
  /** The connection's application_name (cut to PostgreSQL's 63 bytes). */
  applicationName: string
  /** A notification on one of `channels`. Not called once closing began. */
  onNotification: (channel: string, payload: string) => void
  /** Listening again after a gap (never after the first connection). */
  onGap: () => void
  log: { warn (obj: object, msg: string): void, info (obj: object, msg: string): void }
  /** Bound on the first connection and LISTEN, on each connection attempt, and on each check. Default 5 s. */
  timeoutMs?: number
  /** How often the connection is checked with a query (a dead peer may send no FIN). Default 10 s. */
  checkEveryMs?: number
  /** Reconnect backoff: from `minMs` doubling up to `maxMs`. Default 50 ms to 2 s. */
  retry?: { minMs: number, maxMs: number }
  /** How long close may wait for the server to close its side before leaving it behind. Default 1 s. */
  closeTimeoutMs?: number
}

export interface PgListener {
  /** The connection that LISTENs now; null while reconnecting, and once closed. Its queries run in order. */
  readonly client: pg.Client | null
  /** Stops listening; bounded, so a frozen server cannot hold a shutdown. */
  close (): Promise<void>
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`

/**
 * Connects and LISTENs; resolves once it listens, rejects when it cannot within `timeoutMs`
 * (a connection that comes up later is closed at once).
 */
export async function openPgListener (opts: PgListenerOptions): Promise<PgListener> {
  const { connectionString, name, log } = opts
  const channels = new Set(opts.channels)
  const timeoutMs = opts.timeoutMs ?? 5000
  const retry = opts.retry ?? { minMs: 50, maxMs: 2000 }
  const closeTimeoutMs = opts.closeTimeoutMs ?? 1000
  let closed = false
  /** The connection that LISTENs now; null while reconnecting. */
  let listener: pg.Client | null = null
  let reconnecting = false

  const onNotification = (client: pg.Client, msg: pg.Notification) => {
    // Only the connection that listens now: one given up on (a frozen peer that thawed) may
    // still hand over what it had buffered, older than the gap's catch-up read.
    if (closed || client !== listener || !channels.has(msg.channel) || msg.payload === undefined) return
    opts.onNotification(msg.channel, msg.payload)
  }

  async function connect (): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString,
      keepAlive: true,
      connectionTimeoutMillis: timeoutMs,
      application_name: opts.applicationName.slice(0, 63)
    })
    client.on('notification', (msg) => onNotification(client, msg))
    client.on('error', (err) => lost(client, err))
    client.on('end', () => lost(client))
    try {
      // Every attempt is bounded, not only the first: a server that freezes after accepting the
      // connection would otherwise hold a reconnect (and the bus or presence) for good.
      return await withTimeout((async () => {
        await client.connect()
        for (const channel of channels) await client.query(`LISTEN ${quoteIdent(channel)}`)
        return client
      })(), timeoutMs, `${name} LISTEN on ${[...channels].join(', ')}`)
    } catch (err) {
      client.end().catch(() => {})
      throw err
    }
  }

  /** The listening connection broke (or failed its check): reconnect, then report the gap. */
  function lost (client: pg.Client, err?: Error) {
    if (client !== listener) return // an old or never-listening connection
    listener = null
    client.end().catch(() => {})
    if (closed) return
    log.warn({ err }, `${name} lost its PostgreSQL listening connection; reconnecting`)
    void reconnect()
  }

  async function reconnect (): Promise<void> {
    if (reconnecting) return
    reconnecting = true
    let delay = retry.minMs
    for (;;) {
      if (closed) break // close() ran while this loop waited
      let client: pg.Client
      try {
        client = await connect()
      } catch (err) {
        if (delay === retry.minMs) log.warn({ err }, `${name} could not reach PostgreSQL; retrying in the background`)
        await new Promise((resolve) => setTimeout(resolve, delay))
        delay = Math.min(delay * 2, retry.maxMs)
        continue
      }
      if (closed) { client.end().catch(() => {}); break }
      listener = client
      try {
        opts.onGap()
      } catch (err) {
        log.warn({ err }, `${name}: catching up after a gap failed`)
      }
      break
    }
    reconnecting = false
  }

  // TCP keepalive notices a dead peer only after minutes; a query now and then notices sooner.
  const check = setInterval(() => {
    const client = listener
    if (!client || closed) return
    withTimeout(client.query('SELECT 1'), timeoutMs, `${name} listening connection check`).catch((err: Error) => lost(client, err))
  }, opts.checkEveryMs ?? 10_000)
  check.unref()

  try {
    // Bounded by connect() itself, which also ends a connection that comes up too late.
    listener = await connect()
  } catch (err) {
    closed = true
    clearInterval(check)
    throw err
  }

  return {
    get client () { return listener },
    async close () {
      if (closed) return
      closed = true
      clearInterval(check)
      const client = listener
      listener = null
      // end() waits for the server to close its side, which a frozen server never does.
      if (client) await settleWithin(client.end(), closeTimeoutMs)
    }
  }
}
