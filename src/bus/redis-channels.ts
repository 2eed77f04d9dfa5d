// How the Redis bus sends and receives its one channel. On a single node or behind Sentinel:
// PUBLISH on the shared client, SUBSCRIBE on a connection of its own. On a Cluster: sharded
// pub/sub (Redis 7), SPUBLISH and SSUBSCRIBE on the primary that owns the channel's slot, so a
// change travels to that shard only, not to every node. Either way the bus is told after every
// (re)subscription, so it can resync after a gap.
import { Command, Redis, type Cluster } from 'ioredis'
import { withTimeout } from '../timeout.js'

export interface ReceiverEvents {
  message (payload: string): void
  /** After every successful (re)subscription, the first included. */
  subscribed (): void
  /** The subscription is gone (connection lost, slot moved); a new one is being made. */
  lost (err: Error): void
}

export interface ChannelReceiver {
  start (events: ReceiverEvents): void
  ping (): Promise<void>
  close (timeoutMs: number): Promise<void>
}

/**
 * SUBSCRIBE on `subscriber`: a dedicated connection created with `lazyConnect: true`,
 * `autoResubscribe: false` (we resubscribe, so we know when) and an offline queue. The caller
 * owns the connection and disconnects it; close() only unsubscribes.
 */
export function subscriberReceiver (subscriber: Redis, channel: string): ChannelReceiver {
  let closed = false
  return {
    start (events) {
      subscriber.on('message', (ch: string, payload: string) => {
        if (ch === channel && !closed) events.message(payload)
      })
      subscriber.on('error', (err: Error) => { if (!closed) events.lost(err) })
      const subscribeNow = () => {
        if (closed) return
        // If the connection drops again before SUBSCRIBE answers, the next 'ready' retries.
        subscriber.subscribe(channel).then(() => { if (!closed) events.subscribed() }, (err: Error) => { if (!closed) events.lost(err) })
      }
      subscriber.on('ready', subscribeNow)
      if (subscriber.status === 'wait') subscriber.connect().catch(() => { /* 'error' reports it; ioredis retries */ })
      else if (subscriber.status === 'ready') subscribeNow()
    },
    async ping () {
      await subscriber.ping()
    },
    async close (timeoutMs) {
      closed = true
      if (subscriber.status === 'ready') await withTimeout(subscriber.unsubscribe(channel), timeoutMs, 'bus unsubscribe').catch(() => {})
    }
  }
}

/** The cluster slot of a channel (or key), computed locally as Redis does (hash tags included). */
const slotOf = (channel: string): number => new Command('spublish', [channel, '']).getSlot() as number

/**
 * SPUBLISH on the connection the cluster client keeps to the channel's primary, not through the
 * client's routing: that one sends a command it cannot queue (no offline queue, fail fast) to a
 * random node, which answers MOVED and passes it on later, so one publisher's messages could
 * arrive out of order. A node connection queues in order while it connects. On MOVED (the slot
 * moved) or no connection, the publish fails (the bus then owes a resync notice) and the slot map
 * is refreshed for the next one.
 */
export function shardedPublisher (cluster: Cluster, channel: string): (payload: string) => Promise<unknown> {
  const slot = slotOf(channel)
  return async (payload) => {
    const key = cluster.slots[slot]?.[0]
    const node = key === undefined ? undefined : cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === key)
    if (!node || node.status === 'end') {
      cluster.refreshSlotsCache()
      throw new Error(`no connection to the primary of slot ${slot}`)
    }
    try {
      return await node.spublish(channel, payload)
    } catch (err) {
      if (String((err as Error).message).startsWith('MOVED ')) cluster.refreshSlotsCache()
      throw err
    }
  }
}

/** Current owner of `slot` ("host:port" of its primary), from a fresh CLUSTER SLOTS. */
async function ownerOf (cluster: Cluster, slot: number): Promise<{ host: string, port: number }> {
  await new Promise<void>((resolve, reject) => cluster.refreshSlotsCache((err) => err ? reject(err) : resolve()))
  const key = cluster.slots[slot]?.[0]
  if (!key) throw new Error(`no cluster node serves slot ${slot}`)
  const colon = key.lastIndexOf(':')
  return { host: key.slice(0, colon), port: Number(key.slice(colon + 1)) }
}

/**
 * SSUBSCRIBE on the primary that owns the channel's slot, through a connection of this
 * receiver's own (it owns and closes it). When that connection drops, or Redis moves the slot
 * (a failover or resharding: Redis sends an unsolicited SUNSUBSCRIBE, ioredis emits 'moved'),
 * it asks the cluster for the new owner and subscribes there, backing off up to 2 s.
 */
export function shardedReceiver (cluster: Cluster, channel: string, opts: { connectionName?: string } = {}): ChannelReceiver {
  let closed = false
  let conn: Redis | null = null
  let wake: (() => void) | null = null

  const subscribeOnce = async (events: ReceiverEvents, slot: number) => {
    const { host, port } = await ownerOf(cluster, slot)
    const c = new Redis({
      ...cluster.options.redisOptions,
      host,
      port,
      lazyConnect: true,
      retryStrategy: () => null, // this loop reconnects, to whichever node owns the slot by then
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResubscribe: false,
      enableAutoPipelining: false, // a subscriber: nothing to pipeline
      ...(opts.connectionName ? { connectionName: opts.connectionName } : {})
    })
    conn = c
    const gone = new Promise<string>((resolve) => {
      c.once('close', () => resolve('connection closed'))
      c.once('moved', () => resolve('slot moved'))
      wake = () => resolve('receiver closed')
    })
    c.on('error', () => { /* 'close' follows; the loop reconnects */ })
    c.on('smessage', (ch: string, payload: string) => {
      if (ch === channel && !closed) events.message(payload)
    })
    try {
      await c.connect()
      await c.ssubscribe(channel)
      if (closed) return
      events.subscribed()
      const why = await gone
      if (!closed) throw new Error(`sharded bus subscription lost: ${why}`)
    } finally {
      conn = null
      wake = null
      c.disconnect()
    }
  }

  return {
    start (events) {
      void (async () => {
        let failures = 0
        const slot = slotOf(channel)
        // `closed` is set by close(), from outside this loop.
        for (;;) {
          if (closed) return
          try {
            await subscribeOnce(events, slot)
            failures = 0
          } catch (err) {
            if (closed) return
            events.lost(err as Error)
            failures++
          }
          if (!closed && failures > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** Math.min(failures, 6), 2000)))
        }
      })()
    },
    async ping () {
      if (!conn || conn.status !== 'ready') throw new Error('sharded bus subscription is not connected')
      await conn.ping()
    },
    async close (timeoutMs) {
      closed = true
      const c = conn
      if (c?.status === 'ready') await withTimeout(c.sunsubscribe(channel), timeoutMs, 'bus sunsubscribe').catch(() => {})
      wake?.()
      c?.disconnect()
    }
  }
}
