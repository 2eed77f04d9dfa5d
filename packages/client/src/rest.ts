// REST helpers for what the seed's pages need. Errors come back as SyncError with the HTTP
// status and the server's `code`; conditional GETs reuse the ETag of the previous answer.
import type { Logo, VoteCount, VoteResult, Voting } from './protocol.js'
import { SyncError } from './types.js'

export interface RestOptions {
  apiUrl: string
  fetch: typeof globalThis.fetch
  /** The bearer token for a request (null: none). */
  token: (reason: 'request' | 'unauthorized') => Promise<string | null>
}

interface Cached { etag: string, body: unknown }

const MAX_CACHED = 500

export class RestApi {
  private readonly etags = new Map<string, Cached>()

  constructor (private readonly opts: RestOptions) {}

  getLogos = async (): Promise<Logo[]> => (await this.request<{ items: Logo[] }>('GET', '/logos')).items
  getLogo = (id: string): Promise<Logo> => this.request<Logo>('GET', `/logos/${encodeURIComponent(id)}`)
  getVotes = (id: string): Promise<VoteCount> => this.request<VoteCount>('GET', `/logos/${encodeURIComponent(id)}/votes`)
  getVoting = (): Promise<Voting> => this.request<Voting>('GET', '/voting', { conditional: false })
  getMyVotes = async (): Promise<string[]> => (await this.request<{ logoIds: string[] }>('GET', '/me/votes', { auth: true, conditional: false })).logoIds
  vote = (id: string): Promise<VoteResult> => this.request<VoteResult>('POST', `/logos/${encodeURIComponent(id)}/votes`, { auth: true })
  unvote = (id: string): Promise<VoteResult> => this.request<VoteResult>('DELETE', `/logos/${encodeURIComponent(id)}/votes`, { auth: true })

  /** One request; GETs send If-None-Match and a 304 returns the body held. A 401 is retried once with a fresh token. */
  async request<T> (method: string, path: string, opts: { auth?: boolean, conditional?: boolean, body?: unknown } = {}): Promise<T> {
    const url = this.opts.apiUrl + path
    const conditional = method === 'GET' && opts.conditional !== false
    const send = async (reason: 'request' | 'unauthorized') => {
      const headers: Record<string, string> = { accept: 'application/json' }
      const token = await this.opts.token(reason)
      if (token) headers.authorization = `Bearer ${token}`
      else if (opts.auth) throw new SyncError('Sign in first: this request needs a token', 'unauthorized', { status: 401 })
      const cached = conditional ? this.etags.get(url) : undefined
      if (cached) headers['if-none-match'] = cached.etag
      if (opts.body !== undefined) headers['content-type'] = 'application/json'
      try {
        return await this.opts.fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), cache: 'no-store' })
      } catch (err) {
        throw new SyncError(`${method} ${path} failed: ${(err as Error).message}`, 'network_error')
      }
    }
    let res = await send('request')
    if (res.status === 401 && opts.auth) res = await send('unauthorized')
    if (res.status === 304) {
      const cached = this.etags.get(url)
      if (cached) return cached.body as T
      res = await send('request')
    }
    const text = await res.text()
    let body: unknown
    try {
      body = text ? JSON.parse(text) : undefined
    } catch {
      throw new SyncError(`${method} ${path}: ${res.status} with a body that is not JSON`, 'http_error', { status: res.status })
    }
    if (!res.ok) {
      const err = body as { message?: string, code?: string } | undefined
      throw new SyncError(err?.message ?? `${method} ${path}: ${res.status}`, 'http_error', { status: res.status, serverCode: err?.code })
    }
    const etag = res.headers.get('etag')
    if (conditional && etag) {
      if (this.etags.size >= MAX_CACHED) this.etags.delete(this.etags.keys().next().value!)
      this.etags.set(url, { etag, body })
    }
    return body as T
  }
}
