import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { securitySchemes } from '../src/http.js'
import { PROJECT_ROOT } from '../src/paths.js'

/**
 * OpenAPI generated from the routes' TypeBox schemas: UI at GET /docs, document at
 * GET /docs/json. The WebSocket protocol is not OpenAPI's to describe: it is served as
 * markdown at GET /docs/protocol.md and linked from the document's description.
 */
export default fp(async function swaggerPlugin (fastify) {
  const pkg = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }
  await fastify.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'logo-sync',
        version: pkg.version,
        description: 'REST API of the Logo Gallery real-time service. Live updates go over the `/sync` WebSocket: see the [protocol](/docs/protocol.md). Errors are `{ statusCode, error, message, code }`.'
      },
      tags: [
        { name: 'logos' }, { name: 'votes' }, { name: 'voting' }, { name: 'auth' }, { name: 'health' }, { name: 'operations' }
      ],
      components: { securitySchemes },
      externalDocs: { description: 'The /sync WebSocket protocol', url: '/docs/protocol.md' }
    }
  })
  await fastify.register(fastifySwaggerUi, { routePrefix: '/docs' })

  fastify.get('/docs/protocol.md', { schema: { hide: true } }, async (request, reply) => {
    const text = await readFile(join(PROJECT_ROOT, 'docs', 'protocol.md'), 'utf8').catch(() => null)
    if (text === null) throw fastify.httpErrors.notFound('docs/protocol.md is not part of this deployment')
    reply.type('text/markdown; charset=utf-8')
    return text
  })
}, { name: 'swagger', dependencies: ['config'] })
