import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
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
  fastify.get('/sync', {
    websocket: true,
    schema: { querystring: SyncQuery }
  }, (socket, request) => {
    const hub = fastify.syncHub
    const conn = hub.connect(socket, handshakeToken(request.headers.authorization, request.query.token))
    socket.on('message', (data, isBinary) => {
      if (!hub.admit(conn)) return
      const parsed = parseClientFrame(data, isBinary)
      if (!parsed.ok) {
        hub.reject(conn, parsed)
        return
      }
      hub.handle(conn, parsed.frame).catch((err: unknown) => request.log.error({ err, op: parsed.frame.op }, 'sync op failed'))
    })
  })
}

export default syncRoutes
