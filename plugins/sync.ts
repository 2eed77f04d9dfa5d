import websocket from '@fastify/websocket'
import fp from 'fastify-plugin'
import { SyncHub } from '../src/sync/hub.js'
import { CloseCode } from '../src/protocol.js'
import type { SyncStats } from '../src/sync/stats.js'

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
}, { name: 'sync', dependencies: ['config', 'bus', 'presence', 'service', 'auth', 'cache'] })
