import fastifyJwt from '@fastify/jwt'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { USER_ID_PATTERN, type Principal } from '../src/domain.js'

/** What a token is signed for (`exp` and `iat` are added by the signer). */
type Claims = Pick<Principal, 'sub' | 'role'>

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Claims
    user: Principal & { iat?: number }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: any valid token (401 otherwise). */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** preHandler: a valid admin token (401 without a valid token, 403 for another role). */
    requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** Verifies a raw token (for /sync); throws on anything but a valid, unexpired token. */
    verifyToken: (token: string) => Principal
    /** Signs a token for a user with the configured expiry. */
    signToken: (user: Claims) => string
    /** Counts refused credentials; metrics hook in here. */
    onAuthFailure: Set<(reason: string) => void>
  }
}

const SUB = new RegExp(USER_ID_PATTERN)

/** The latest instant a Date can hold (ms since the epoch): an `exp` past it has no expiry time. */
const LATEST_DATE_MS = 8.64e15

/**
 * Claims we accept: a safe `sub` (it appears in channel names), a known role, and an `exp` (when
 * there is one) that a Date can hold. A token with an `exp` no Date can hold is refused: its
 * expiry could not be reported (`expiresAt`) or armed, and no real issuer mints one. One rule for
 * REST, the /sync handshake and the in-band auth op, since all three call this.
 */
function checkClaims (decoded: unknown): Principal {
  const c = decoded as Partial<Claims> & { exp?: unknown }
  if (typeof c?.sub !== 'string' || !SUB.test(c.sub)) throw new Error('token has no valid sub claim')
  if (c.role !== 'user' && c.role !== 'admin') throw new Error('token has no valid role claim')
  if (c.exp !== undefined && (typeof c.exp !== 'number' || !Number.isFinite(c.exp) || c.exp * 1000 > LATEST_DATE_MS)) {
    throw new Error('token has an exp claim no date can hold')
  }
  return c as Principal
}

/** JWT auth (HS256, JWT_SECRET): `user` and `admin` roles, 401 for a missing/bad token, 403 for a wrong role. */
export default fp(async function authPlugin (fastify) {
  const { jwtSecret, JWT_EXPIRES_IN, JWT_REQUIRE_EXP, jwtIssuers, jwtAudiences } = fastify.config
  await fastify.register(fastifyJwt, {
    secret: jwtSecret,
    sign: {
      algorithm: 'HS256',
      expiresIn: /^\d+$/.test(JWT_EXPIRES_IN) ? Number(JWT_EXPIRES_IN) * 1000 : JWT_EXPIRES_IN,
      ...(jwtIssuers.length > 0 ? { iss: jwtIssuers[0] } : {}),
      ...(jwtAudiences.length > 0 ? { aud: jwtAudiences[0] } : {})
    },
    verify: {
      algorithms: ['HS256'],
      // A token without exp would be good forever: refused unless JWT_REQUIRE_EXP=false. A checked
      // iss/aud must also be present (fast-jwt only checks the ones a token has).
      requiredClaims: [...(JWT_REQUIRE_EXP ? ['exp'] : []), ...(jwtIssuers.length > 0 ? ['iss'] : []), ...(jwtAudiences.length > 0 ? ['aud'] : [])],
      ...(jwtIssuers.length > 0 ? { allowedIss: jwtIssuers } : {}),
      ...(jwtAudiences.length > 0 ? { allowedAud: jwtAudiences } : {})
    }
  })
  const failureListeners = new Set<(reason: string) => void>()
  fastify.decorate('onAuthFailure', failureListeners)
  const fail = (reason: string) => { for (const l of failureListeners) l(reason) }

  fastify.decorate('verifyToken', (token: string) => {
    try {
      return checkClaims(fastify.jwt.verify(token))
    } catch (err) {
      fail('invalid_token')
      throw err
    }
  })
  fastify.decorate('signToken', (user: Claims) => fastify.jwt.sign({ sub: user.sub, role: user.role }))

  async function authenticate (request: FastifyRequest) {
    const header = request.headers.authorization
    if (!header) {
      fail('missing_token')
      throw fastify.httpErrors.unauthorized('Missing bearer token')
    }
    try {
      await request.jwtVerify()
      checkClaims(request.user)
    } catch {
      fail('invalid_token')
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
}, { name: 'auth', dependencies: ['config', '@fastify/sensible'] })
