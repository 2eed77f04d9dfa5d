import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { DeadlineBody, Voting, isVotingOpen, type DeadlineState } from '../src/domain.js'
import { errors } from '../src/http.js'

const toVoting = (state: DeadlineState): Voting => ({
  deadline: state.deadline,
  open: isVotingOpen(state.deadline),
  serverTime: new Date().toISOString()
})

const votingRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/voting', {
    schema: {
      tags: ['voting'],
      summary: 'The voting deadline, whether voting is open, and the server clock',
      response: { 200: Voting, ...errors(429, 503) }
    }
  }, async () => toVoting(await fastify.logos.getDeadline()))

  fastify.put('/voting/deadline', {
    onRequest: fastify.requireAdmin,
    schema: {
      tags: ['voting'],
      summary: 'Set or clear the voting deadline (admin)',
      security: [{ bearerAuth: [] }],
      body: DeadlineBody,
      response: { 200: Voting, ...errors(400, 401, 403, 429, 503) }
    }
  }, async (request) => toVoting(await fastify.logos.setDeadline(request.body.deadline)))
}

export default votingRoutes
