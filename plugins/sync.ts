import websocket from '@fastify/websocket'
import fp from 'fastify-plugin'
import { CLOSE_RULES } from '@logo-sync/client/protocol'
import { SyncHub } from '../src/sync/hub.js'
import { CloseCode } from '../src/protocol.js'
import type { SyncStats } from '../src/sync/stats.js'
import type { Metrics } from './metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The /sync hub: channel registry, protocol ops, fanout of bus changes. */
    syncHub: SyncHub
    /**
     * /sync counters and gauges, plus `observers` for per-event hooks and duration samples
     * (fanout time, bus-to-delivery latency). Documented in src/sync/stats.ts.
     */
    syncStats: SyncStats
  }
}

/**
 * The sync hub on this replica: fed by the bus (every replica's changes, this one's included),
 * reading state through the logo service, authenticating with the auth plugin's verifier.
 * Registers @fastify/websocket with the frame-size limit and a preClose that closes every
 * client with 1001 before the server stops.
 */
export default fp(async function syncPlugin (fastify) {
  const c = fastify.config
  const logos = () => fastify.logos
  const hub = new SyncHub({
    // Through the service on every call (it may put a cache in front of the store).
    reads: {
      listLogos: () => logos().listLogos(),
      getLogo: (id) => logos().getLogo(id),
      getVotes: (id) => logos().getVotes(id),
      getDeadline: () => logos().getDeadline(),
      userVotes: (sub) => logos().userVotes(sub)
    },
    verifyToken: (token) => fastify.verifyToken(token),
    limits: {
      rateLimit: c.SYNC_RATE_LIMIT,
      maxSubscriptions: c.SYNC_MAX_SUBSCRIPTIONS,
      maxBufferBytes: c.SYNC_MAX_BUFFER_BYTES,
      slowConsumerMs: c.SYNC_SLOW_CONSUMER_MS,
      conflateMs: c.SYNC_CONFLATE_MS,
      heartbeatMs: c.SYNC_HEARTBEAT_MS
    },
    log: fastify.log.child({ component: 'sync' }),
    presence: { backend: fastify.presenceBackend, replicaId: fastify.replicaId }
  })
  fastify.decorate('syncHub', hub)
  fastify.decorate('syncStats', hub.stats)
  declareMetrics(fastify.metrics, hub.stats, fastify.rateLimited)

  const offMessage = fastify.bus.subscribe(hub.onBusMessage)
  const offResync = fastify.bus.onResync(() => hub.resync())
  fastify.addHook('onClose', async () => {
    offMessage()
    offResync()
    hub.stop()
    // Takes this replica out of every total now, rather than when its entry expires.
    await hub.presence.close()
  })

  // A variable, not a literal: ws 8.23 has `closeTimeout`, @types/ws does not know it yet.
  const wsOptions = {
    maxPayload: c.SYNC_MAX_FRAME_BYTES, // larger frames close the connection with 1009
    perMessageDeflate: false, // a broadcast's bytes are shared by every recipient as is
    closeTimeout: 5000 // how long a closing handshake may take before the socket is destroyed
  }
  await fastify.register(websocket, {
    options: wsOptions,
    // Errors thrown by the route's handler itself (socket errors go to hub.socketError: see routes/sync.ts).
    errorHandler (err, socket, request) {
      request.log.error({ err }, 'sync handler failed')
      if (socket.readyState === socket.OPEN) socket.close(CloseCode.internalError, 'internal error')
      else socket.terminate()
    },
    preClose: async function closeClients () {
      await hub.shutdown()
      fastify.websocketServer.close()
    }
  })
}, { name: 'sync', dependencies: ['config', 'bus', 'presence', 'service', 'auth', 'cache', 'rate-limit', 'metrics'] })

/**
 * Close codes of the shared vocabulary get their own label value; any other (a client may pick
 * any 3000-4999) is 'other', so the label set stays bounded.
 */
const KNOWN_CLOSE_CODES = new Set(Object.keys(CLOSE_RULES).map(Number))

/** The hub's metrics: gauges read from its stats at scrape time, the rest fed as it counts. */
function declareMetrics (metrics: Metrics, stats: SyncStats, rateLimited: (scope: 'sync') => void): void {
  const gauge = (name: string, help: string, read: (s: SyncStats) => number) => metrics.gauge({
    name,
    help,
    collect () { this.set(read(stats)) }
  })
  gauge('sync_num_connections', 'Open /sync connections', (s) => s.connections)
  gauge('sync_num_subscriptions', 'Channel subscriptions over all /sync connections', (s) => s.subscriptions)
  gauge('sync_num_channels', 'Channels with at least one local subscriber', (s) => s.channels)
  const framesIn = metrics.counter({ name: 'sync_frames_received_total', help: 'Frames received from /sync clients, by op', labelNames: ['op'] })
  // Copied from SyncStats at scrape time, not counted here per frame: a broadcast to 10,000
  // subscribers would otherwise be 20,000 prom-client calls (≈ 6 % of the fan-out's CPU).
  metrics.counter({
    name: 'sync_frames_sent_total',
    help: 'Frames sent to /sync clients, by type',
    labelNames: ['type'],
    collect () {
      this.reset()
      for (const [type, value] of Object.entries(stats.framesOutByType)) this.inc({ type }, value)
    }
  })
  metrics.counter({
    name: 'sync_bytes_sent_total',
    help: 'Bytes sent to /sync clients',
    collect () {
      this.reset()
      this.inc(stats.bytesOut)
    }
  })
  const broadcastDuration = metrics.histogram({ name: 'sync_broadcast_duration_seconds', help: 'Time to fan one change out to local subscribers', buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5] })
  const deliveryLatency = metrics.histogram({ name: 'sync_delivery_latency_seconds', help: 'From bus publish (any replica) to delivery to local subscribers', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] })
  const disconnects = metrics.counter({ name: 'sync_disconnects_total', help: '/sync disconnects by close code', labelNames: ['code'] })
  const resyncs = metrics.counter({ name: 'sync_resyncs_total', help: 'Subscribes by since outcome (current: nothing sent; stale: state sent; none: no since or a whole channel)', labelNames: ['outcome'] })
  const errors = metrics.counter({ name: 'sync_errors_total', help: 'Protocol error frames sent, by code', labelNames: ['code'] })
  stats.observers.add({
    frameIn: (op) => framesIn.inc({ op }),
    disconnect: (code) => disconnects.inc({ code: KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other' }),
    resync: (outcome) => resyncs.inc({ outcome }),
    rateLimited: () => rateLimited('sync'),
    error: (code) => errors.inc({ code }),
    fanout: (seconds) => broadcastDuration.observe(seconds),
    delivery: (seconds) => deliveryLatency.observe(seconds)
  })
}
