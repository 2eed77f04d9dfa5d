import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { DeadlineBody, Voting, isVotingOpen, type DeadlineState } from '../src/domain.js'
import { bearer, errors, NoQuery } from '../src/http.js'

const toVoting = (state: DeadlineState): Voting => ({
  deadline: state.deadline,
  open: isVotingOpen(state.deadline),
  serverTime: new Date().toISOString()
})

/** Latest deadline we store: both stores and every client's Date can hold it. */
const MAX_DEADLINE_MS = Date.parse('9999-12-31T23:59:59.999Z')

/**
 * The schema's `date-time` admits strings no Date can hold (a leap second `…T23:59:60Z`) or
 * years a store refuses (`0000`): those are the client's mistake, a 400. The rest is stored
 * as one canonical UTC string, whichever store is behind.
 */
function normaliseDeadline (deadline: string | null): string | null | undefined {
  if (deadline === null) return null
  const ms = Date.parse(deadline)
  return Number.isNaN(ms) || ms < 0 || ms > MAX_DEADLINE_MS ? undefined : new Date(ms).toISOString()
}

const votingRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/voting', {
    schema: {
      querystring: NoQuery,
      tags: ['voting'],
      summary: 'The voting deadline, whether voting is open, and the server clock',
      response: { 200: Voting, ...errors(429, 503) }
    }
  }, async () => toVoting(await fastify.logos.getDeadline()))

  fastify.put('/voting/deadline', {
    onRequest: fastify.requireAdmin,
    schema: {
      querystring: NoQuery,
      tags: ['voting'],
      summary: 'Set or clear the voting deadline (admin)',
      security: bearer,
      body: DeadlineBody,
      response: { 200: Voting, ...errors(400, 401, 403, 429, 503) }
    }
  }, async (request) => {
    const deadline = normaliseDeadline(request.body.deadline)
    if (deadline === undefined) throw fastify.httpErrors.badRequest(`body.deadline ${JSON.stringify(request.body.deadline)} is not a date between 1970 and 9999`)
    return toVoting(await fastify.logos.setDeadline(deadline))
  })
}

export default votingRoutes
