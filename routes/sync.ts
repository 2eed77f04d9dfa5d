import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ConnectionSlots } from '../src/connection-slots.js'
import { parseClientFrame } from '../src/sync/frames.js'

const SyncQuery = Type.Object({
  token: Type.Optional(Type.String({ minLength: 1, maxLength: 8192, description: 'JWT, for clients that cannot set headers' }))
}, { additionalProperties: false })

/** `Authorization: Bearer <jwt>` first, then `?token=`; null for an anonymous connection. */
function handshakeToken (authorization: string | undefined, query: string | undefined): string | null {
  if (authorization !== undefined) return /^Bearer\s+(\S+)$/i.exec(authorization)?.[1] ?? authorization
  return query ?? null
}

/** GET /sync: the WebSocket protocol of docs/protocol.md. Parses and validates; the hub does the rest. */
const syncRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const slots = new ConnectionSlots(fastify.config.SYNC_MAX_CONNECTIONS_PER_IP)
  // The upgrade's ServerResponse, by request: the handler below gets the request only.
  const upgrades = new WeakMap<IncomingMessage, ServerResponse>()
  fastify.get('/sync', {
    websocket: true,
    schema: { querystring: SyncQuery },
    // Before the upgrade, so a refused connection costs a short HTTP answer and no WebSocket: any
    // while the replica drains, or one over SYNC_MAX_CONNECTIONS_PER_IP. request.ip honours
    // TRUST_PROXY: behind a proxy it is the client's address, not the proxy's. The slot is given
    // back when the TCP socket closes.
    onRequest: async (request, reply) => {
      // Draining (shutdown): no new sockets here. A 503 on the upgrade is what a balancer such as
      // deploy/nginx.conf retries on another replica, and the SDK retries after its jitter.
      if (!fastify.syncHub.acceptsConnections) {
        reply.header('retry-after', 1)
        throw fastify.httpErrors.serviceUnavailable('this replica is shutting down: connect to another one')
      }
      // A plain GET /sync (no upgrade) gets its 404 and holds no slot.
      if (!request.ws) return
      upgrades.set(request.raw, reply.raw)
      if (slots.take(request.ip, request.raw.socket)) return
      fastify.rateLimited('sync_connections')
      reply.header('retry-after', 10)
      throw fastify.httpErrors.tooManyRequests(`at most ${fastify.config.SYNC_MAX_CONNECTIONS_PER_IP} concurrent /sync connections per address`)
    }
  }, (socket, request) => {
    const hub = fastify.syncHub
    const conn = hub.connect(socket, handshakeToken(request.headers.authorization, request.query.token))
    // Nothing below may keep `request` alive for the connection's lifetime: it holds the
    // upgrade's headers, reply, logger and buffers (about 4 KB a connection). @fastify/websocket
    // leaves two references to it on the socket: its own 'error' listener (closing over request
    // and reply) and the ServerResponse assigned to the TCP socket. Replace the first, drop the second.
    socket.removeAllListeners('error')
    socket.on('error', (err: Error) => hub.socketError(conn, err))
    const response = upgrades.get(request.raw)
    if (response?.socket) response.detachSocket(response.socket)
    socket.on('message', (data, isBinary) => {
      if (!hub.admit(conn)) return
      const parsed = parseClientFrame(data, isBinary)
      if (!parsed.ok) {
        hub.reject(conn, parsed)
        return
      }
      void hub.handle(conn, parsed.frame)
    })
  })
}

export default syncRoutes
