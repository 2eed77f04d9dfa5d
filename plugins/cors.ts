import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'

/** CORS from CORS_ORIGINS: a list of origins, '*' for any, empty for same-origin only. */
export default fp(async function corsPlugin (fastify) {
  const origins = fastify.config.corsOrigins
  // Same-origin only: browsers need no CORS headers, so no hook runs on every request.
  if (origins !== '*' && origins.length === 0) return
  await fastify.register(fastifyCors, {
    origin: origins === '*' ? true : origins,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'If-None-Match'],
    exposedHeaders: ['ETag', 'Retry-After'],
    maxAge: 600
  })
}, { name: 'cors', dependencies: ['config'] })
