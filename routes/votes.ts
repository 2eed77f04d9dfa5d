import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { LogoParams, MyVotes, VoteCount, VoteResult } from '../src/domain.js'
import { bearer, errors, versionTag, notModified, NoQuery } from '../src/http.js'

const voteRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const voteSchema = (summary: string) => ({
    querystring: NoQuery,
    tags: ['votes'],
    summary,
    security: bearer,
    params: LogoParams,
    response: { 200: VoteResult, ...errors(400, 401, 404, 409, 429, 503) }
  })

  fastify.post('/logos/:id/votes', {
    onRequest: fastify.authenticate,
    preHandler: fastify.voteRateLimit,
    schema: voteSchema('Vote for a logo (idempotent: a repeat never counts twice)')
  }, async (request) => {
    const { changed, ...result } = await fastify.logos.castVote(request.params.id, request.user.sub)
    return result
  })

  fastify.delete('/logos/:id/votes', {
    onRequest: fastify.authenticate,
    preHandler: fastify.voteRateLimit,
    schema: voteSchema('Retract your vote for a logo')
  }, async (request) => {
    const { changed, ...result } = await fastify.logos.retractVote(request.params.id, request.user.sub)
    return result
  })

  fastify.get('/logos/:id/votes', {
    schema: {
      querystring: NoQuery,
      tags: ['votes'],
      summary: "A logo's vote count",
      params: LogoParams,
      response: { 200: VoteCount, ...errors(400, 404, 429, 503) }
    }
  }, async (request, reply) => {
    const count = await fastify.logos.getVotes(request.params.id)
    if (!count) throw fastify.httpErrors.notFound('Logo not found')
    if (notModified(request, reply, versionTag(`${count.logoId}.votes`, count.version))) return reply
    return count
  })

  fastify.get('/me/votes', {
    onRequest: fastify.authenticate,
    schema: {
      querystring: NoQuery,
      tags: ['votes'],
      summary: 'Ids of the logos you voted for',
      security: bearer,
      response: { 200: MyVotes, ...errors(401, 429, 503) }
    }
  }, async (request) => ({ logoIds: await fastify.logos.userVotes(request.user.sub) }))
}

export default voteRoutes
