import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuthOptions, DevTokenBody, TokenResponse } from '../src/domain.js'
import { errors, NoQuery } from '../src/http.js'

/**
 * POST /auth/dev-token exists only when the server generated its own throwaway secret
 * (no JWT_SECRET, not production): the demo page logs in with it. Anywhere else it is a 404.
 */
const authRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // Lets the demo page offer the demo sign-in only where it works, without probing for a 404.
  fastify.get('/auth/options', {
    schema: {
      querystring: NoQuery,
      tags: ['auth'],
      summary: 'Which sign-in this server offers (whether demo tokens exist)',
      response: { 200: AuthOptions, ...errors(429) }
    }
  }, async () => ({ devTokens: fastify.config.devTokens }))

  if (!fastify.config.devTokens) return
  fastify.post('/auth/dev-token', {
    schema: {
      querystring: NoQuery,
      tags: ['auth'],
      summary: 'Mint a token for the demo (only without JWT_SECRET, never in production)',
      body: DevTokenBody,
      response: { 200: TokenResponse, ...errors(400, 429) }
    }
  }, async (request) => ({ token: fastify.signToken({ sub: request.body.sub, role: request.body.role ?? 'user' }) }))
}

export default authRoutes
