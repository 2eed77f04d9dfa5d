// The payloads of the PostgreSQL bus. A NOTIFY payload must be shorter than 8,000 bytes, so a
// transaction's changes are packed into as few notifications as fit, and a change that cannot
// fit on its own (a logo whose title, URL and description are long and escape-heavy) travels
// as a reference, its id and version, for receivers to read back from the store.
import { createHash } from 'node:crypto'
import type { BusEvent } from './types.js'

/** PostgreSQL refuses payloads of 8,000 bytes or more; this leaves room to spare. */
export const MAX_PAYLOAD_BYTES = 7900

/** A logo change too large for a notification: receivers read the logo at `version` or later. */
export interface LogoRef {
  ref: 'logo.created' | 'logo.updated'
  logoId: string
  version: number
}

export type WireEvent = BusEvent | LogoRef

/** One notification: some of one transaction's changes, in order, from one replica. */
export interface Envelope {
  origin: string
  publishedAt: number
  events: WireEvent[]
}

export const isRef = (e: WireEvent): e is LogoRef => 'ref' in e

/**
 * The channel for a schema: replicas on one database and schema share data, so they share the
 * bus; another schema in the same database (a test, a second deployment) never hears them.
 * Channel names are identifiers (at most 63 bytes): a long schema name is hashed.
 */
export function channelForSchema (schema: string): string {
  const plain = `logo_sync.${schema}`
  return plain.length <= 63 ? plain : `logo_sync.${createHash('sha256').update(schema).digest('hex').slice(0, 40)}`
}

const byteLength = (s: string) => Buffer.byteLength(s, 'utf8')

function reference (e: BusEvent): LogoRef {
  if (e.kind === 'logo.created' || e.kind === 'logo.updated') return { ref: e.kind, logoId: e.logo._id, version: e.logo.version }
  // Only logos carry user text; every other change is a few ids and numbers.
  throw new Error(`a ${e.kind} change does not fit in a notification`)
}

/** The payloads for `events`, in order, each at most `maxBytes` long. */
export function pack (events: readonly BusEvent[], origin: string, publishedAt: number, maxBytes = MAX_PAYLOAD_BYTES): string[] {
  const head = `{"origin":${JSON.stringify(origin)},"publishedAt":${publishedAt},"events":[`
  const tail = ']}'
  const frame = byteLength(head) + tail.length
  const payloads: string[] = []
  let batch: string[] = []
  let size = frame
  const flush = () => {
    if (batch.length > 0) payloads.push(head + batch.join(',') + tail)
    batch = []
    size = frame
  }
  for (const event of events) {
    let json = JSON.stringify(event)
    let bytes = byteLength(json)
    if (frame + bytes > maxBytes) {
      json = JSON.stringify(reference(event))
      bytes = byteLength(json)
    }
    if (batch.length > 0 && size + 1 + bytes > maxBytes) flush()
    size += (batch.length > 0 ? 1 : 0) + bytes
    batch.push(json)
  }
  flush()
  return payloads
}

const isWireEvent = (v: unknown): v is WireEvent => {
  if (typeof v !== 'object' || v === null) return false
  const e = v as Record<string, unknown>
  if (typeof e.ref === 'string') return (e.ref === 'logo.created' || e.ref === 'logo.updated') && typeof e.logoId === 'string' && typeof e.version === 'number'
  return typeof e.kind === 'string'
}

/** The envelope in a payload, or null when it is not one of ours. */
export function unpack (payload: string): Envelope | null {
  let v: unknown
  try { v = JSON.parse(payload) } catch { return null }
  if (typeof v !== 'object' || v === null) return null
  const e = v as Record<string, unknown>
  if (typeof e.origin !== 'string' || typeof e.publishedAt !== 'number' || !Array.isArray(e.events) || !e.events.every(isWireEvent)) return null
  return { origin: e.origin, publishedAt: e.publishedAt, events: e.events }
}
