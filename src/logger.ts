// pino options: one JSON line per event, secrets redacted by configuration.
import type { FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'

/** Parameter names, decoded, lowercased and stripped to letters and digits, whose values are secrets. */
const SECRET_NAMES = new Set(['jwt', 'password', 'passwd', 'secret', 'apikey', 'authorization', 'auth', 'key', 'signature', 'sig'])
const isSecretName = (raw: string): boolean => {
  let name = raw.replace(/\+/g, ' ')
  try { name = decodeURIComponent(name) } catch { /* malformed escapes: judge the name as sent */ }
  name = name.toLowerCase().replace(/[^a-z0-9]/g, '')
  return name.includes('token') || SECRET_NAMES.has(name)
}

/**
 * Removes credentials from a URL before it can reach a log line. Goes by the parameter name as
 * the server decodes it (`%74oken` is `token`), and splits on every separator a parser might
 * honour (`?`, `&`, `;`, `#`), not only the ones ours does: a log line must not depend on which
 * parser a proxy or a future version uses.
 */
export function redactUrl (url: string | undefined): string | undefined {
  if (!url) return url
  const start = url.search(/[?;#]/)
  if (start === -1) return url
  return url.slice(0, start) + url.slice(start).replace(/([?&;#])([^=?&;#]*)=([^?&;#]*)/g,
    (param: string, separator: string, name: string) => isSecretName(name) ? `${separator}${name}=[REDACTED]` : param)
}

export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'headers.authorization',
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'config.JWT_SECRET',
  'config.jwtSecret',
  'config.REDIS_PASSWORD'
]

export function loggerOptions (config: Config, stream?: NodeJS.WritableStream): FastifyServerOptions['logger'] {
  const pretty = config.LOG_PRETTY === 'true' || (config.LOG_PRETTY === 'auto' && process.stdout.isTTY && !stream)
  return {
    level: config.LOG_LEVEL,
    redact: { paths: redactPaths, censor: '[REDACTED]' },
    serializers: {
      req: (req) => ({
        method: req.method,
        url: redactUrl(req.url),
        host: req.host,
        remoteAddress: req.ip,
        requestId: req.id
      })
    },
    ...(stream ? { stream } : {}),
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } } : {})
  } as FastifyServerOptions['logger']
}
