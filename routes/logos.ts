import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { CreateLogoBody, Logo, LogoList, LogoParams, UpdateLogoBody } from '../src/domain.js'
import { bearer, errors, listTag, notModified, versionTag, NoQuery } from '../src/http.js'

const logoRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/logos', {
    schema: {
      querystring: NoQuery,
      tags: ['logos'],
      summary: 'List all logos',
      response: { 200: LogoList, 304: Type.Null(), ...errors(429, 503) }
    }
  }, async (request, reply) => {
    const items = await fastify.logos.listLogos()
    if (notModified(request, reply, listTag(items))) return reply
    return { items }
  })

  fastify.get('/logos/:id', {
    schema: {
      querystring: NoQuery,
      tags: ['logos'],
      summary: 'One logo',
      params: LogoParams,
      response: { 200: Logo, 304: Type.Null(), ...errors(400, 404, 429, 503) }
    }
  }, async (request, reply) => {
    const logo = await fastify.logos.getLogo(request.params.id)
    if (!logo) throw fastify.httpErrors.notFound('Logo not found')
    if (notModified(request, reply, versionTag(logo._id, logo.version))) return reply
    return logo
  })

  fastify.post('/logos', {
    onRequest: fastify.requireAdmin,
    schema: {
      querystring: NoQuery,
      tags: ['logos'],
      summary: 'Create a logo (admin)',
      security: bearer,
      body: CreateLogoBody,
      response: { 201: Logo, ...errors(400, 401, 403, 413, 429, 503) }
    }
  }, async (request, reply) => {
    const logo = await fastify.logos.createLogo(request.body)
    reply.code(201).header('etag', versionTag(logo._id, logo.version))
    return logo
  })

  fastify.patch('/logos/:id', {
    onRequest: fastify.requireAdmin,
    schema: {
      querystring: NoQuery,
      tags: ['logos'],
      summary: 'Edit a logo (admin)',
      security: bearer,
      params: LogoParams,
      body: UpdateLogoBody,
      response: { 200: Logo, ...errors(400, 401, 403, 404, 413, 429, 503) }
    }
  }, async (request, reply) => {
    const logo = await fastify.logos.updateLogo(request.params.id, request.body)
    if (!logo) throw fastify.httpErrors.notFound('Logo not found')
    reply.header('etag', versionTag(logo._id, logo.version))
    return logo
  })

  fastify.delete('/logos/:id', {
    onRequest: fastify.requireAdmin,
    schema: {
      querystring: NoQuery,
      tags: ['logos'],
      summary: 'Delete a logo and its votes (admin)',
      security: bearer,
      params: LogoParams,
      response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 429, 503) }
    }
  }, async (request, reply) => {
    if (!await fastify.logos.deleteLogo(request.params.id)) throw fastify.httpErrors.notFound('Logo not found')
    return reply.code(204).send(null)
  })
}

export default logoRoutes
