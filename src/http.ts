// Small HTTP helpers shared by the REST routes.
import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { ErrorResponse } from './domain.js'

/** Error responses every route may give, for the schemas (and the OpenAPI document). */
export const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [c, ErrorResponse]))

/** The one OpenAPI security scheme (the swagger plugin's `components.securitySchemes`). */
export const securitySchemes = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'JWT with claims sub, role (user | admin; JWT_ROLE_CLAIM names another claim), exp: HS256 with the shared secret, or RS/PS/ES/EdDSA from JWT_JWKS_URL'
  }
} as const

/** `security` of a route that needs a token: the scheme above. */
export const bearer: Array<Record<keyof typeof securitySchemes, string[]>> = [{ bearerAuth: [] }]

/** REST routes take no query parameters: an unknown one is a 400, like an unknown body field. */
export const NoQuery = Type.Object({}, { additionalProperties: false })

/** A weak ETag from a version: cheap, and exact because versions only go up. */
export const versionTag = (id: string, version: number) => `W/"${id}.${version}"`

/** An ETag for a list of versioned items. */
export function listTag (items: { _id: string, version: number }[]): string {
  const h = createHash('sha1')
  for (const i of items) h.update(`${i._id}.${i.version};`)
  return `W/"${h.digest('base64url').slice(0, 22)}"`
}

/** Sets ETag and answers 304 when the client already holds it. Returns true when it did. */
export function notModified (request: FastifyRequest, reply: FastifyReply, etag: string): boolean {
  reply.header('etag', etag)
  const match = request.headers['if-none-match']
  if (match && match.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
    reply.code(304).send()
    return true
  }
  return false
}
