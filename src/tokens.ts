// Token verification: one rule for REST, the /sync handshake and the in-band `auth` op.
// HS256 with the shared secret (JWT_SECRET, or the dev secret), and RS/PS/ES/EdDSA from an
// identity provider's JWKS (JWT_JWKS_URL). Each algorithm family is verified only with its own
// kind of key, so an HS256 token "signed" with a published public key (alg confusion) is refused.
//
// jose does the verification and the remote key set: keys are cached (10 minutes), fetched again
// when a token names a kid the cache does not hold, at most once per cooldown
// (JWT_JWKS_COOLDOWN_MS), so a flood of made-up kids costs the identity provider one request per
// cooldown; a refetch replaces the whole set, so a kid rotated out is refused.
// (get-jwks, the other candidate, caches per kid and serves a stale key when the kid has gone,
// which would keep accepting a rotated-out key.)
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose'
import { USER_ID_PATTERN, type Principal, type Role } from './domain.js'

export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const

export interface VerifierOptions {
  /** HS256 secret; null: HS256 tokens are refused (JWKS only). */
  secret: string | null
  jwksUrl?: string
  requireExp: boolean
  issuers: string[]
  audiences: string[]
  /** Where the role is: a claim name, or a dotted path (`realm_access.roles`). */
  roleClaim: string
  /** Least time between two JWKS fetches caused by unknown kids. */
  jwksCooldownMs: number
  /** How long fetched keys are trusted before they are fetched again. */
  jwksMaxAgeMs?: number
  /** How long a JWKS fetch may take. */
  jwksTimeoutMs?: number
}

/** A token that does not verify; `reason` is for logs and metrics, never for the client. */
export class TokenError extends Error {
  constructor (readonly reason: string) {
    super(`invalid token: ${reason}`)
    this.name = 'TokenError'
  }
}

/** The latest instant a Date can hold (ms since the epoch): an `exp` past it has no expiry time. */
const LATEST_DATE_MS = 8.64e15
const SUB = new RegExp(USER_ID_PATTERN)

/** A claim by name, or by dotted path through nested objects; own properties only. */
export function readClaim (payload: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path]
  let value: unknown = payload
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

/**
 * Claims that carry `role` where JWT_ROLE_CLAIM looks for it, for the tokens the server signs
 * itself (dev tokens, `npm run token`): `{ role }`, or `{ realm_access: { roles: [role] } }`.
 */
export function roleClaims (path: string, role: Role): Record<string, unknown> {
  const parts = path.split('.')
  if (parts.length === 1) return { [path]: role }
  let claims: Record<string, unknown> = { [parts.at(-1)!]: [role] }
  for (const part of parts.slice(0, -1).reverse()) claims = { [part]: claims }
  return claims
}

/**
 * The role from the role claim: `"user"` or `"admin"`, or a list of roles (Keycloak's
 * `realm_access.roles`, Auth0 or Cognito groups) holding `admin` (admin wins) or `user`.
 */
export function roleOf (value: unknown): Role | null {
  const roles = typeof value === 'string' ? [value] : Array.isArray(value) ? value : []
  if (roles.includes('admin')) return 'admin'
  if (roles.includes('user')) return 'user'
  return null
}

/**
 * Claims every accepted token must have, whatever signed it: a safe `sub` (it appears in channel
 * names), a known role, and an `exp` (when there is one) that a Date can hold, since its expiry
 * is reported (`expiresAt`) and armed as a timer.
 */
export function principalOf (payload: JWTPayload, roleClaim: string): Principal {
  if (typeof payload.sub !== 'string' || !SUB.test(payload.sub)) throw new TokenError('no valid sub claim')
  const role = roleOf(readClaim(payload, roleClaim))
  if (!role) throw new TokenError(`no user or admin role in the ${roleClaim} claim`)
  const { exp } = payload
  if (exp !== undefined && (typeof exp !== 'number' || !Number.isFinite(exp) || exp * 1000 > LATEST_DATE_MS)) throw new TokenError('an exp claim no date can hold')
  return exp === undefined ? { sub: payload.sub, role } : { sub: payload.sub, role, exp }
}

export type TokenVerifier = (token: string) => Promise<Principal>

export function createTokenVerifier (opts: VerifierOptions): TokenVerifier {
  // Imported once: handed the raw bytes, jose would import them as a WebCrypto key on every
  // verification (about a tenth of the CPU of an authenticated request).
  const secret = opts.secret === null ? null : crypto.subtle.importKey('raw', new TextEncoder().encode(opts.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
  secret?.catch(() => {}) // an import failure surfaces on the first HS256 token, as a refusal
  const jwks = opts.jwksUrl
    ? createRemoteJWKSet(new URL(opts.jwksUrl), {
      cooldownDuration: opts.jwksCooldownMs,
      cacheMaxAge: opts.jwksMaxAgeMs ?? 10 * 60_000,
      timeoutDuration: opts.jwksTimeoutMs ?? 5000
    })
    : null
  const common: JWTVerifyOptions = {
    requiredClaims: opts.requireExp ? ['exp'] : [],
    ...(opts.issuers.length > 0 ? { issuer: opts.issuers } : {}),
    ...(opts.audiences.length > 0 ? { audience: opts.audiences } : {})
  }
  return async function verifyToken (token: string): Promise<Principal> {
    let alg: string | undefined
    try {
      alg = decodeProtectedHeader(token).alg
    } catch {
      throw new TokenError('not a JWT')
    }
    let payload: JWTPayload
    try {
      if (alg === 'HS256' && secret) {
        payload = (await jwtVerify(token, await secret, { ...common, algorithms: ['HS256'] })).payload
      } else if (jwks && (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg ?? '')) {
        payload = (await jwtVerify(token, jwks, { ...common, algorithms: [...ASYMMETRIC_ALGORITHMS] })).payload
      } else {
        throw new TokenError(`algorithm ${alg} is not accepted`)
      }
    } catch (err) {
      if (err instanceof TokenError) throw err
      throw new TokenError((err as { code?: string }).code ?? (err as Error).message)
    }
    return principalOf(payload, opts.roleClaim)
  }
}
