// Config is read once, here, validated with a TypeBox schema, and handed down typed
// (`fastify.config`). Nothing else reads process.env.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'

const Int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER, description = '') =>
  Type.Integer({ default: def, minimum: min, maximum: max, description })
const Bool = (def: boolean) => Type.Boolean({ default: def })
/** `host:port[,host:port…]`; an IPv6 host in brackets (`[::1]:26379`). */
const HOST_PORT_LIST = '^\\s*(\\[[0-9A-Fa-f:.]+\\]|[^\\s,:\\[\\]]+):[0-9]{1,5}(\\s*,\\s*(\\[[0-9A-Fa-f:.]+\\]|[^\\s,:\\[\\]]+):[0-9]{1,5})*\\s*$'

export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  PORT: Int(3000, 0, 65535),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  /** Pretty logs: 'auto' = when stdout is a terminal. */
  LOG_PRETTY: Type.Union([Type.Literal('auto'), Type.Literal('true'), Type.Literal('false')], { default: 'auto' }),
  TRUST_PROXY: Type.String({ default: 'false', description: "'false', 'true', a hop count or a comma-separated list of addresses" }),

  DATA_DIR: Type.String({ default: './data', minLength: 1 }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_SCHEMA: Type.String({ default: 'public', pattern: '^[a-z_][a-z0-9_]{0,62}$' }),
  DATABASE_POOL_MAX: Int(10, 1, 1000),
  DATABASE_CONNECT_TIMEOUT_MS: Int(5000, 100, 600_000, 'how long a request may wait for a PostgreSQL connection (a free one of DATABASE_POOL_MAX, or a new one) before it is answered 503'),
  DATABASE_QUERY_TIMEOUT_MS: Int(10_000, 100, 600_000, 'a PostgreSQL query with no answer after this long (a frozen or unreachable server) fails with 503; its connection is dropped. The server cancels a statement (statement_timeout) a little before, and a lock wait at half that (lock_timeout), and ends a session left idle in a transaction this long; migrations run under no timeout'),
  SEED_DEMO_DATA: Type.Optional(Type.Boolean()),

  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_PASSWORD: Type.Optional(Type.String()),
  /** Sentinel: the sentinels to ask for the current primary of REDIS_SENTINEL_NAME. */
  REDIS_SENTINELS: Type.Optional(Type.String({ pattern: HOST_PORT_LIST, description: 'comma-separated host:port of the Redis sentinels' })),
  REDIS_SENTINEL_NAME: Type.String({ default: 'mymaster', pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'the primary group the sentinels monitor' }),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String({ description: 'password of the sentinels themselves (requirepass on the sentinels)' })),
  /** Cluster: any of its nodes; the rest are discovered. */
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: HOST_PORT_LIST, description: 'comma-separated host:port of some Redis Cluster nodes' })),
  REDIS_KEY_PREFIX: Type.String({ default: 'logo-sync:', pattern: '^[A-Za-z0-9:_.-]{1,64}$' }),

  JWT_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  JWT_EXPIRES_IN: Type.String({ default: '1h', pattern: '^[0-9]+[smhd]?$' }),
  /** Refuse tokens without an `exp` claim (a token that never expires cannot be taken back). */
  JWT_REQUIRE_EXP: Bool(true),
  /** Accepted `iss` values, comma-separated; unset: any. Tokens the server signs carry the first. */
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  /** Accepted `aud` values, comma-separated; unset: any. Tokens the server signs carry the first. */
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  /** An identity provider's JWKS: RS/PS/ES/EdDSA tokens are verified with its keys. */
  JWT_JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  JWT_JWKS_COOLDOWN_MS: Int(30_000, 0, 3_600_000, 'least time between two JWKS fetches caused by tokens with an unknown kid'),
  /** The claim that holds the role: a name, or a dotted path such as realm_access.roles (Keycloak). */
  JWT_ROLE_CLAIM: Type.String({ default: 'role', minLength: 1, maxLength: 200 }),

  BODY_LIMIT: Int(1024 * 1024, 1024, 64 * 1024 * 1024),
  RATE_LIMIT_MAX: Int(600, 1),
  VOTE_RATE_LIMIT: Int(30, 1),
  CORS_ORIGINS: Type.String({ default: '', description: "comma-separated origins; '*' for any; empty for none" }),

  SYNC_RATE_LIMIT: Int(100, 1),
  SYNC_MAX_SUBSCRIPTIONS: Int(200, 1),
  SYNC_MAX_FRAME_BYTES: Int(16 * 1024, 256, 16 * 1024 * 1024),
  SYNC_MAX_BUFFER_BYTES: Int(1024 * 1024, 1024),
  SYNC_CONFLATE_MS: Int(100, 0, 60_000),
  SYNC_HEARTBEAT_MS: Int(25_000, 100, 600_000),
  SYNC_MAX_CONNECTIONS_PER_IP: Int(100, 1, Number.MAX_SAFE_INTEGER, 'concurrent /sync connections per client address on one replica; more are refused with 429 before the upgrade'),
  SYNC_SLOW_CONSUMER_MS: Int(5000, 100, 600_000, 'how long a client may stay over SYNC_MAX_BUFFER_BYTES before it is closed with 4009'),

  CACHE_STRATEGY: Type.Union([Type.Literal('cache-first'), Type.Literal('stale-while-revalidate')], { default: 'cache-first' }),
  CACHE_TTL_MS: Int(60_000, 0),
  CACHE_MAX_ENTRIES: Int(10_000, 1),
  CACHE_MAX_BYTES: Int(64 * 1024 * 1024, 1024),
  CACHE_STALE_MS: Int(60_000, 0, Number.MAX_SAFE_INTEGER, 'stale-while-revalidate: how long past CACHE_TTL_MS a value may still be served while it refreshes'),
  CACHE_L2_TIMEOUT_MS: Int(250, 1, 60_000, 'a Redis cache command slower than this falls back to the store'),
  /** GET /_debug/cache and /_debug/cache/entry (tests, local debugging); never registered in production. */
  CACHE_DEBUG_ROUTES: Bool(false),

  METRICS_ENABLED: Bool(true),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 8 })),
  /** Serve /metrics on this port (same HOST) instead of the app's port. */
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  PRESSURE_MAX_EVENT_LOOP_DELAY_MS: Int(1000, 0),
  PRESSURE_MAX_HEAP_BYTES: Int(0, 0, Number.MAX_SAFE_INTEGER, '0 disables the heap check'),
  SHUTDOWN_GRACE_MS: Int(15_000, 100, 3_600_000, 'the longest a shutdown may take (drain included) before the process exits anyway'),
  SHUTDOWN_DRAIN_MS: Int(5000, 0, 3_600_000, 'after SIGTERM: how long /readyz answers 503 while REST and /sync keep serving, so load balancers stop routing here'),
  SHUTDOWN_SPREAD_MS: Int(2000, 0, 3_600_000, 'after the drain: the window over which /sync clients are closed with 1001, in batches')
}, { additionalProperties: true })

export type Env = Static<typeof EnvSchema>

export interface HostPort { host: string, port: number }

/** Where Redis is, in one of its three shapes; null when no Redis is configured. */
export type RedisTopology =
  | { mode: 'standalone', url: string }
  | { mode: 'sentinel', sentinels: HostPort[], name: string }
  | { mode: 'cluster', nodes: HostPort[] }

/** Which bus carries committed changes between replicas: see plugins/bus.ts and docs/architecture.md. */
export type BusKind = 'memory' | 'redis' | 'postgres'

export interface Config extends Env {
  DATA_DIR: string
  /** The bus this configuration gets, and why (logged at startup): see chooseBus. */
  bus: { kind: BusKind, reason: string }
  SEED_DEMO_DATA: boolean
  /** The secret actually used; generated when JWT_SECRET is unset outside production. */
  jwtSecret: string
  /**
   * True when the secret was generated (no JWT_SECRET, no JWT_JWKS_URL, not production): enables
   * POST /auth/dev-token. HS256 tokens are accepted only with JWT_SECRET or dev tokens.
   */
  devTokens: boolean
  corsOrigins: string[] | '*'
  trustProxy: boolean | number | string[]
  isProduction: boolean
  /** JWT_ISSUER / JWT_AUDIENCE as lists (empty: not checked). */
  jwtIssuers: string[]
  jwtAudiences: string[]
  /** From REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES (at most one is set); null: none. */
  redis: RedisTopology | null
}

/**
 * The one answer to "is Redis configured" (single node, Sentinel or Cluster). Everything that
 * picks a Redis-backed part (bus, L2 cache, rate-limit store, readiness) asks this.
 */
export function redisConfigured (config: Pick<Config, 'redis'>): boolean {
  return config.redis !== null
}

export class ConfigError extends Error {
  constructor (readonly variable: string, detail: string) {
    super(`Invalid configuration: ${variable} ${detail}`)
    this.name = 'ConfigError'
  }
}

const validator = Compile(EnvSchema)
const booleans = new Set(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])

/** Environment strings to typed values, per the schema, before validation. */
function coerce (env: Record<string, string | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, schema] of Object.entries(EnvSchema.properties)) {
    const raw = env[key]
    if (raw === undefined || raw === '') continue
    const type = (schema as { type?: string }).type
    if (type === 'integer') {
      out[key] = /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw
    } else if (type === 'boolean') {
      const v = raw.trim().toLowerCase()
      out[key] = booleans.has(v) ? ['true', '1', 'yes', 'on'].includes(v) : raw
    } else {
      out[key] = raw
    }
  }
  return out
}

function applyDefaults (values: Record<string, unknown>): Record<string, unknown> {
  const out = { ...values }
  for (const [key, schema] of Object.entries(EnvSchema.properties)) {
    const def = (schema as { default?: unknown }).default
    if (out[key] === undefined && def !== undefined) out[key] = def
  }
  return out
}

const list = (raw: string | undefined): string[] => (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)

function parseTrustProxy (raw: string): boolean | number | string[] {
  if (raw === 'true') return true
  if (raw === 'false' || raw === '') return false
  if (/^\d+$/.test(raw)) return Number(raw)
  return raw.split(',').map((s) => s.trim()).filter(Boolean)
}

function parseHostPorts (variable: string, raw: string): HostPort[] {
  return raw.split(',').map((entry) => {
    const s = entry.trim()
    const colon = s.lastIndexOf(':')
    const host = s.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
    const port = Number(s.slice(colon + 1))
    if (port < 1 || port > 65535) throw new ConfigError(variable, `has a port out of range in ${JSON.stringify(s)}`)
    return { host, port }
  })
}

function redisTopology (e: Env): RedisTopology | null {
  const set = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((v) => e[v] !== undefined)
  if (set.length > 1) throw new ConfigError(set[1], `cannot be combined with ${set[0]}: set one of REDIS_URL (one node), REDIS_SENTINELS (Sentinel) or REDIS_CLUSTER_NODES (Cluster)`)
  if (e.REDIS_URL !== undefined) return { mode: 'standalone', url: e.REDIS_URL }
  if (e.REDIS_SENTINELS !== undefined) return { mode: 'sentinel', sentinels: parseHostPorts('REDIS_SENTINELS', e.REDIS_SENTINELS), name: e.REDIS_SENTINEL_NAME }
  if (e.REDIS_CLUSTER_NODES !== undefined) return { mode: 'cluster', nodes: parseHostPorts('REDIS_CLUSTER_NODES', e.REDIS_CLUSTER_NODES) }
  return null
}

const REDIS_VARIABLE = { standalone: 'REDIS_URL', sentinel: 'REDIS_SENTINELS', cluster: 'REDIS_CLUSTER_NODES' } as const

/**
 * Redis whenever any Redis is configured (it also carries the L2 cache and the rate limits, and
 * fans out past one database's NOTIFY throughput); else PostgreSQL LISTEN/NOTIFY when the store
 * is PostgreSQL, so replicas sharing a database always hear each other; else one process.
 */
function chooseBus (e: Env, redis: RedisTopology | null): Config['bus'] {
  if (redis && redisConfigured({ redis })) return { kind: 'redis', reason: `Redis is configured (${REDIS_VARIABLE[redis.mode]}): pub/sub after each commit` }
  if (e.DATABASE_URL) return { kind: 'postgres', reason: 'DATABASE_URL is set and no Redis is configured: PostgreSQL LISTEN/NOTIFY inside each write transaction' }
  return { kind: 'memory', reason: 'no DATABASE_URL and no Redis: one process on SQLite, in-process delivery' }
}

/**
 * The environment with a `.env` file underneath, when there is one (for `npm start`): variables
 * already set win. Read with Node's own parser (the one behind `node --env-file` and
 * `process.loadEnvFile()`), but into a copy, so process.env stays what the process was given.
 */
export function withEnvFile (env: Record<string, string | undefined> = process.env, path = resolve('.env')): { env: Record<string, string | undefined>, file: string | null } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { env, file: null }
    throw err
  }
  return { env: { ...parseEnv(text), ...env }, file: path }
}

/** Reads and validates configuration. Throws ConfigError naming the first bad variable. */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const values = applyDefaults(coerce(env))
  if (!validator.Check(values)) {
    const [first] = validator.Errors(values)
    const variable = first?.instancePath.replace(/^\//, '') || String((first?.params as { requiredProperties?: string[] })?.requiredProperties?.[0] ?? 'environment')
    const raw = env[variable]
    const choices = (EnvSchema.properties[variable as keyof Env] as { anyOf?: { const?: unknown }[] } | undefined)?.anyOf?.map((s) => s.const)
    const why = choices?.every((c) => c !== undefined) ? `must be one of ${choices.join(', ')}` : first?.message ?? 'is invalid'
    throw new ConfigError(variable, `${why}${raw !== undefined ? ` (got ${JSON.stringify(/SECRET|PASSWORD|TOKEN/.test(variable) ? '<redacted>' : raw)})` : ''}`)
  }
  const e = values as Env
  const isProduction = e.NODE_ENV === 'production'
  if (isProduction && !e.JWT_SECRET && !e.JWT_JWKS_URL) {
    throw new ConfigError('JWT_SECRET', 'is required when NODE_ENV=production (no throwaway secrets in production), unless JWT_JWKS_URL is set')
  }
  if (e.METRICS_PORT !== undefined && e.METRICS_PORT === e.PORT) {
    throw new ConfigError('METRICS_PORT', `must differ from PORT (both ${e.PORT}); leave it unset to serve /metrics on the app's port`)
  }
  if (e.SHUTDOWN_DRAIN_MS + e.SHUTDOWN_SPREAD_MS >= e.SHUTDOWN_GRACE_MS) {
    throw new ConfigError('SHUTDOWN_GRACE_MS', `must be more than SHUTDOWN_DRAIN_MS + SHUTDOWN_SPREAD_MS (${e.SHUTDOWN_DRAIN_MS} + ${e.SHUTDOWN_SPREAD_MS} ms), or the drain is cut short: raise it or shorten those (got ${e.SHUTDOWN_GRACE_MS})`)
  }
  const origins = e.CORS_ORIGINS.trim()
  const redis = redisTopology(e)
  return {
    ...e,
    DATA_DIR: resolve(e.DATA_DIR),
    bus: chooseBus(e, redis),
    SEED_DEMO_DATA: e.SEED_DEMO_DATA ?? e.DATABASE_URL === undefined,
    jwtSecret: e.JWT_SECRET ?? randomBytes(32).toString('hex'),
    devTokens: !e.JWT_SECRET && !e.JWT_JWKS_URL && !isProduction,
    corsOrigins: origins === '*' ? '*' : origins.split(',').map((s) => s.trim()).filter(Boolean),
    trustProxy: parseTrustProxy(e.TRUST_PROXY.trim()),
    isProduction,
    jwtIssuers: list(e.JWT_ISSUER),
    jwtAudiences: list(e.JWT_AUDIENCE),
    redis
  }
}
