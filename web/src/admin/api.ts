// The admin's REST calls (POST/PATCH/DELETE /logos, PUT /voting/deadline) with the signed-in
// token. Nothing is applied locally: every change comes back to this page, as to every other
// open page, over /sync. A 400 is split into per-field messages, so each shows next to its field.
import type { Logo, TokenSource, Voting } from 'logo-sync/client'

export interface LogoFields {
  title: string
  imageUrl: string
  description?: string | null
  author?: string | null
}

export type FieldName = 'title' | 'imageUrl' | 'description' | 'author' | 'deadline'

export class AdminError extends Error {
  constructor (message: string, readonly status: number, readonly fields: Partial<Record<FieldName, string>> = {}) {
    super(message)
  }
}

const FIELDS = new Set<string>(['title', 'imageUrl', 'description', 'author', 'deadline'])

/**
 * The server's validation message (`body.title must NOT have fewer than 1 characters; body.imageUrl
 * must match pattern "…"`) as one plain sentence per field; anything not about a field stays general.
 */
export function fieldErrors (message: string): { fields: Partial<Record<FieldName, string>>, rest: string[] } {
  const fields: Partial<Record<FieldName, string>> = {}
  const rest: string[] = []
  for (const part of message.split('; ')) {
    const m = /^body\.(\w+)\s+(.*)$/.exec(part)
    if (m && FIELDS.has(m[1]!)) {
      const field = m[1] as FieldName
      fields[field] ??= plainWords(field, m[2]!)
    } else {
      rest.push(part)
    }
  }
  return { fields, rest }
}

/** The server's words, as a sentence; the schema's terse ones ("must NOT have fewer than 1 characters") made plain. */
function plainWords (field: FieldName, text: string): string {
  if (/fewer than 1 character/.test(text)) return 'Required.'
  const tooLong = /more than (\d+) characters/.exec(text)
  if (tooLong) return `At most ${tooLong[1]} characters.`
  if (field === 'deadline' && /format/.test(text)) return 'Not a date and time the server accepts.'
  const sentence = text.charAt(0).toUpperCase() + text.slice(1)
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`
}

export class AdminApi {
  constructor (private readonly getToken: TokenSource, private readonly baseUrl = '') {}

  createLogo = (fields: LogoFields): Promise<Logo> => this.send<Logo>('POST', '/logos', fields)
  updateLogo = (id: string, fields: Partial<LogoFields>): Promise<Logo> => this.send<Logo>('PATCH', `/logos/${encodeURIComponent(id)}`, fields)
  deleteLogo = (id: string): Promise<void> => this.send<void>('DELETE', `/logos/${encodeURIComponent(id)}`)
  setDeadline = (deadline: string | null): Promise<Voting> => this.send<Voting>('PUT', '/voting/deadline', { deadline })

  /** One request; a 401 is tried once more with a fresh token (the held one may have just expired). */
  private async send<T> (method: string, path: string, body?: unknown): Promise<T> {
    const attempt = async (reason: 'request' | 'unauthorized') => {
      const token = await this.getToken({ reason })
      if (!token) throw new AdminError('Sign in as an admin first.', 401)
      const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${token}` }
      if (body !== undefined) headers['content-type'] = 'application/json'
      try {
        return await fetch(this.baseUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' })
      } catch {
        throw new AdminError('The server cannot be reached; try again in a moment.', 0)
      }
    }
    let res = await attempt('request')
    if (res.status === 401) res = await attempt('unauthorized')
    if (res.ok) return (res.status === 204 ? undefined : await res.json()) as T
    const err = await res.json().catch(() => ({})) as { message?: string }
    const message = err.message ?? `${method} ${path} failed (${res.status})`
    if (res.status === 400) {
      const { fields, rest } = fieldErrors(message)
      throw new AdminError(rest.join('; '), 400, fields)
    }
    if (res.status === 403) throw new AdminError('Only an admin can do that.', 403)
    if (res.status === 404) throw new AdminError('That logo no longer exists.', 404)
    if (res.status === 429) throw new AdminError('Too many requests; try again in a moment.', 429)
    throw new AdminError(message, res.status)
  }
}
