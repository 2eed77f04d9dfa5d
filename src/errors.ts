// One error handler: 4xx say what the client got wrong, 5xx hide internals and are logged.
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance } from 'fastify'
import { PATTERN_WORDS } from './domain.js'
import { NotFoundError, StoreUnavailableError, VotingClosedError } from './store/types.js'

const codeByStatus: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'unavailable'
}

const reasons: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable'
}

/** Connection-level failures of PostgreSQL, SQLite or Redis: the service is unavailable, not broken. */
function isUnavailable (err: { code?: string, message?: string }): boolean {
  const code = err.code ?? ''
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'SQLITE_BUSY', 'SQLITE_CANTOPEN', 'SQLITE_IOERR', '57P01', '57P03', '08000', '08003', '08006', '53300'].includes(code) ||
    /Connection terminated|database connection is not open|timeout exceeded when trying to connect|Stream isn't writeable|Connection is closed/i.test(err.message ?? '')
}

interface SchemaError { keyword: string, instancePath: string, message?: string, params: Record<string, unknown> }

/** Validation errors in plain words: `body.title must be string; body: unknown field "extra"`. */
export function formatValidationErrors (errors: SchemaError[], context: string): Error {
  const parts = new Set<string>()
  for (const e of errors) {
    if (e.keyword === 'boolean') continue // the twin of an additionalProperties error
    const where = context + e.instancePath.replace(/\//g, '.')
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params.additionalProperties as string[] | undefined) ?? [String(e.params.additionalProperty)]
      parts.add(`${where}: unknown field${extra.length > 1 ? 's' : ''} ${extra.map((f) => JSON.stringify(f)).join(', ')}`)
    } else if (e.keyword === 'pattern' && PATTERN_WORDS[String(e.params.pattern)]) {
      parts.add(`${where} ${PATTERN_WORDS[String(e.params.pattern)]}`)
    } else {
      parts.add(`${where} ${e.message ?? 'is invalid'}`)
    }
  }
  return new Error([...parts].join('; ') || `${context} is invalid`)
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (headers over the size limit, a
 * malformed request line, a client too slow to send its headers): the same error shape as every
 * other answer, `code` included. Otherwise Fastify's default, which it replaces.
 */
export function clientErrorHandler (this: FastifyInstance, err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? [408, 'request_timeout', 'The request took too long to arrive']
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'headers_too_large', 'The request headers are over the size limit']
      : [400, 'bad_request', 'The request is not valid HTTP']
  this.log.trace({ err }, 'client error')
  const body = JSON.stringify({ statusCode: status, error: reasons[status] ?? STATUS_CODES[status], message, code })
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`)
  socket.destroy(err)
}

export function installErrorHandler (app: FastifyInstance): void {
  app.setSchemaErrorFormatter((errors, context) => formatValidationErrors(errors as unknown as SchemaError[], context))

  app.setErrorHandler((err: FastifyError & { code?: string }, request, reply) => {
    let status = err.statusCode ?? 500
    let code: string | undefined
    let message = err.message
    if (err instanceof VotingClosedError) {
      status = 409; code = 'voting_closed'
    } else if (err instanceof NotFoundError) {
      status = 404
    } else if (err.validation) {
      status = 400
    } else if (err instanceof StoreUnavailableError) {
      status = 503; code = err.code
      reply.header('retry-after', err.retryAfterSeconds)
      request.log.warn({ err: err.cause ?? err }, 'store unavailable')
    } else if (status >= 500 && isUnavailable(err)) {
      status = 503; message = 'A backing service is unavailable; try again shortly'
      reply.header('retry-after', 5)
      request.log.warn({ err }, 'backing service unavailable')
    }
    if (status >= 500 && status !== 503) {
      request.log.error({ err, req: request }, 'request failed')
      message = 'Internal Server Error'
    }
    if (status === 429 && !code) code = 'rate_limited'
    reply.code(status).send({
      statusCode: status,
      error: reasons[status] ?? 'Error',
      message,
      code: code ?? codeByStatus[status] ?? (status >= 500 ? 'internal' : 'error')
    })
  })

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `Route ${request.method} ${request.url.split('?')[0]} not found`, code: 'not_found' })
  })
}
