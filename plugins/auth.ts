import fastifyJwt from '@fastify/jwt'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Principal } from '../src/domain.js'
import { createTokenVerifier, roleClaims, TokenError } from '../src/tokens.js'

/** What a token is signed for (`exp` and `iat` are added by the signer). */
type Claims = Pick<Principal, 'sub' | 'role'>

declare module '@fastify/jwt' {
  interface FastifyJWT {
    /** What the server signs: `sub`, and the role where JWT_ROLE_CLAIM says (src/tokens.ts roleClaims). */
    payload: { sub: string } & Record<string, unknown>
    user: Principal
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: any valid token (401 otherwise). */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** preHandler: a valid admin token (401 without a valid token, 403 for another role). */
    requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /**
     * Verifies a raw token, the same way for REST, the /sync handshake and the in-band auth op;
     * rejects (TokenError) on anything but a valid, unexpired token. Async: a JWKS key may have
     * to be fetched.
     */
    verifyToken: (token: string) => Promise<Principal>
    /** Signs an HS256 token for a user with the configured expiry (dev tokens). */
    signToken: (user: Claims) => string
  }
}

const BEARER = /^Bearer +(\S+) *$/i

/**
 * JWT auth: HS256 with JWT_SECRET (or the dev secret), and/or RS/PS/ES/EdDSA from an identity
 * provider's JWKS (JWT_JWKS_URL); exp required (JWT_REQUIRE_EXP), JWT_ISSUER / JWT_AUDIENCE
 * checked, the role read from JWT_ROLE_CLAIM (src/tokens.ts). `user` and `admin` roles: 401 for
 * a missing or bad token, 403 for a wrong role. @fastify/jwt signs the server's own tokens.
 */
export default fp(async function authPlugin (fastify) {
  const c = fastify.config
  await fastify.register(fastifyJwt, {
    secret: c.jwtSecret,
    sign: {
      algorithm: 'HS256',
      expiresIn: /^\d+$/.test(c.JWT_EXPIRES_IN) ? Number(c.JWT_EXPIRES_IN) * 1000 : c.JWT_EXPIRES_IN,
      ...(c.jwtIssuers.length > 0 ? { iss: c.jwtIssuers[0] } : {}),
      ...(c.jwtAudiences.length > 0 ? { aud: c.jwtAudiences[0] } : {})
    }
  })
  const verify = createTokenVerifier({
    // The generated secret only backs dev tokens; with a JWKS alone, HS256 is not accepted.
    secret: c.JWT_SECRET ?? (c.devTokens ? c.jwtSecret : null),
    ...(c.JWT_JWKS_URL ? { jwksUrl: c.JWT_JWKS_URL } : {}),
    requireExp: c.JWT_REQUIRE_EXP,
    issuers: c.jwtIssuers,
    audiences: c.jwtAudiences,
    roleClaim: c.JWT_ROLE_CLAIM,
    jwksCooldownMs: c.JWT_JWKS_COOLDOWN_MS
  })
  const failures = fastify.metrics.counter({ name: 'auth_failures_total', help: 'Refused credentials, by reason', labelNames: ['reason'] })
  const fail = (reason: 'missing_token' | 'invalid_token' | 'forbidden') => failures.inc({ reason })
  const log = fastify.log.child({ component: 'auth' })

  fastify.decorate('verifyToken', async (token: string) => {
    try {
      return await verify(token)
    } catch (err) {
      fail('invalid_token')
      log.debug({ reason: err instanceof TokenError ? err.reason : String(err) }, 'token refused')
      throw err
    }
  })
  fastify.decorate('signToken', (user: Claims) => fastify.jwt.sign({ sub: user.sub, ...roleClaims(c.JWT_ROLE_CLAIM, user.role) }))

  async function authenticate (request: FastifyRequest) {
    const header = request.headers.authorization
    if (!header) {
      fail('missing_token')
      throw fastify.httpErrors.unauthorized('Missing bearer token')
    }
    const token = BEARER.exec(header)?.[1]
    if (!token) {
      fail('invalid_token')
      throw fastify.httpErrors.unauthorized('Invalid or expired token')
    }
    try {
      request.user = await fastify.verifyToken(token)
    } catch {
      throw fastify.httpErrors.unauthorized('Invalid or expired token')
    }
  }
  fastify.decorate('authenticate', authenticate)
  fastify.decorate('requireAdmin', async (request: FastifyRequest) => {
    await authenticate(request)
    if (request.user.role !== 'admin') {
      fail('forbidden')
      throw fastify.httpErrors.forbidden('Admin role required')
    }
  })
}, { name: 'auth', dependencies: ['config', '@fastify/sensible', 'metrics'] })
