// Inbound frames: JSON text, validated against the protocol's TypeBox schemas (compiled once).
// Outbound frames: serialised once to a Buffer, so a broadcast sends the same bytes to everyone.
import { Compile } from 'typebox/compile'
import { AuthOp, ClientFrame, PingOp, SubscribeOp, UnsubscribeOp, type RequestId, type ServerFrame } from '../protocol.js'

const validators = {
  subscribe: Compile(SubscribeOp),
  unsubscribe: Compile(UnsubscribeOp),
  auth: Compile(AuthOp),
  ping: Compile(PingOp)
} as const
const anyFrame = Compile(ClientFrame)

export type ParsedFrame =
  | { ok: true, frame: ClientFrame }
  | { ok: false, message: string, id?: RequestId }

/** The request id of a frame that failed validation, if it has a usable one (to answer in kind). */
function requestIdOf (value: Record<string, unknown>): RequestId | undefined {
  const id = value.id
  if (typeof id === 'string' && id.length <= 64) return id
  if (typeof id === 'number' && Number.isInteger(id)) return id
  return undefined
}

function describe (errors: Iterable<{ keyword: string, instancePath: string, message: string, params: unknown }>): string {
  for (const e of errors) {
    if (e.keyword === 'boolean') continue // the additionalProperties twin below says it better
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperties?: string[] }).additionalProperties ?? []
      return `unknown field${extra.length === 1 ? '' : 's'} ${extra.join(', ')}`
    }
    return `${e.instancePath ? `${e.instancePath.slice(1)} ` : ''}${e.message}`
  }
  return 'invalid frame'
}

// ws has already checked that a text frame is UTF-8 (it closes with 1007 otherwise), so the
// decoding here cannot meet a bad sequence.
const decoder = new TextDecoder('utf-8')

/** Parses and validates one client frame. Never throws. */
export function parseClientFrame (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): ParsedFrame {
  if (isBinary) return { ok: false, message: 'frames must be JSON text, not binary' }
  const text = decoder.decode(Array.isArray(data) ? Buffer.concat(data) : data)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, message: 'frame is not valid JSON' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, message: 'frame must be a JSON object' }
  }
  if (anyFrame.Check(value)) return { ok: true, frame: value }
  const record = value as Record<string, unknown>
  const id = requestIdOf(record)
  const op = record.op
  const validator = typeof op === 'string' && Object.hasOwn(validators, op) ? validators[op as keyof typeof validators] : undefined
  const message = validator ? describe(validator.Errors(value)) : `op must be one of ${Object.keys(validators).join(', ')}`
  return id === undefined ? { ok: false, message } : { ok: false, message, id }
}

/** `{ id }` when the client gave one: replies echo the request id, or carry none. */
export const withId = (id: RequestId | undefined) => (id === undefined ? {} : { id })

/** Serialises a frame once; the Buffer goes to every recipient unchanged. */
export const encodeFrame = (frame: ServerFrame): Buffer => Buffer.from(JSON.stringify(frame))
