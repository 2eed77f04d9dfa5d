// pino options: one JSON line per event, secrets redacted by configuration.
import type { FastifyServerOptions } from 'fastify'
import type { Config } from './config.js'

/** Removes credentials from a URL's query string before it can reach a log line. */
export function redactUrl (url: string | undefined): string | undefined {
  if (!url || !url.includes('?')) return url
  return url.replace(/([?&](?:token|access_token|jwt|password|secret)=)[^&#]*/gi, '$1[REDACTED]')
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
