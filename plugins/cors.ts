import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'

/** CORS from CORS_ORIGINS: a list of origins, '*' for any, empty for same-origin only. */
export default fp(async function corsPlugin (fastify) {
  const origins = fastify.config.corsOrigins
  await fastify.register(fastifyCors, {
    origin: origins === '*' ? true : origins.length > 0 ? origins : false,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'If-None-Match'],
    exposedHeaders: ['ETag', 'Retry-After'],
    maxAge: 600
  })
}, { name: 'cors', dependencies: ['config'] })
