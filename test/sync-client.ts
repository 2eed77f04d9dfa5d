// A /sync test client on the `ws` package: records every frame, waits for frames by predicate,
// and keeps channel state the way a client SDK would (versions only go up; list items apply
// only when newer), so tests can compare what a client ends with against the store.
import WebSocket from 'ws'
import type { Logo } from '../src/domain.js'
import type { TestLike } from './helper.js'

export interface Frame {
  type?: string
  channel?: string
  version?: number | null
  data?: unknown
  code?: string
  id?: string | number
  message?: string
  [key: string]: unknown
}

export interface OpenOptions {
  token?: string
  /** How to send the token at the handshake (default header). */
  via?: 'header' | 'query'
  /** false: never answer server pings (a dead peer). */
  autoPong?: boolean
}

let nextId = 0

export class SyncClient {
  readonly frames: Frame[] = []
  /** Raw text of every frame, to compare bytes across recipients. */
  readonly raw: string[] = []
  readonly state = new ChannelState()
  readonly closed: Promise<{ code: number, reason: string }>
  private waiters = new Set<() => void>()

  private constructor (readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = data.toString()
      this.raw.push(text)
      const frame = JSON.parse(text) as Frame
      this.frames.push(frame)
      this.state.apply(frame)
      for (const w of [...this.waiters]) w()
    })
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() })
        for (const w of [...this.waiters]) w()
      })
    })
  }

  /** Opens a connection (resolves on open, before the welcome arrives). */
  static async open (t: TestLike, url: string, opts: OpenOptions = {}): Promise<SyncClient> {
    const target = opts.token && opts.via === 'query' ? `${url}?token=${encodeURIComponent(opts.token)}` : url
    const headers = opts.token && opts.via !== 'query' ? { authorization: `Bearer ${opts.token}` } : undefined
    const ws = new WebSocket(target, { headers, autoPong: opts.autoPong ?? true })
    const client = new SyncClient(ws)
    ws.on('error', () => { /* surfaced through `closed` */ })
    t.teardown(() => client.terminate())
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    return client
  }

  /** Opens and waits for the welcome. */
  static async connect (t: TestLike, url: string, opts: OpenOptions = {}): Promise<SyncClient> {
    const client = await SyncClient.open(t, url, opts)
    await client.waitFor((f) => f.type === 'welcome')
    return client
  }

  /** The close, or a rejection after timeoutMs. */
  closedWithin (timeoutMs = 10_000): Promise<{ code: number, reason: string }> {
    let timer: NodeJS.Timeout | undefined
    return Promise.race([
      this.closed,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs) })
    ]).finally(() => clearTimeout(timer))
  }

  get isOpen (): boolean {
    return this.ws.readyState === WebSocket.OPEN
  }

  send (frame: object | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** The first frame at index >= from that matches, waiting up to timeoutMs for it. */
  waitFor (match: (f: Frame) => boolean, opts: { timeoutMs?: number, from?: number } = {}): Promise<Frame> {
    const { timeoutMs = 5000, from = 0 } = opts
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = from; i < this.frames.length; i++) {
          if (match(this.frames[i])) { done(); resolve(this.frames[i]); return true }
        }
        if (this.ws.readyState === WebSocket.CLOSED) { done(); reject(new Error(`connection closed while waiting; last frames: ${JSON.stringify(this.frames.slice(-3))}`)); return true }
        return false
      }
      const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${timeoutMs} ms; last frames: ${JSON.stringify(this.frames.slice(-3))}`)) }, timeoutMs)
      const waiter = () => { check() }
      const done = () => { clearTimeout(timer); this.waiters.delete(waiter) }
      if (!check()) this.waiters.add(waiter)
    })
  }

  /** Waits until `cond()` holds (checked on every frame), or throws after timeoutMs. */
  async until (cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    await this.waitFor(() => cond(), { timeoutMs }).catch((err: Error) => {
      if (!cond()) throw new Error(`${what}: ${err.message}`)
    })
  }

  /** A ping/pong round trip: every frame the server sent before the pong has arrived. */
  async barrier (): Promise<void> {
    const id = `b${++nextId}`
    const from = this.frames.length
    this.send({ op: 'ping', id })
    await this.waitFor((f) => f.type === 'pong' && f.id === id, { from })
  }

  /**
   * Subscribes and returns the `subscribed` answer and the state frame that followed it
   * (null when the server sent none, e.g. a current `since`).
   */
  async subscribe (channel: string, since?: number | null): Promise<{ subscribed: Frame, state: Frame | null }> {
    const id = `s${++nextId}`
    const from = this.frames.length
    this.send({ op: 'subscribe', channel, id, ...(since === undefined ? {} : { since }) })
    const subscribed = await this.waitFor((f) => f.id === id, { from })
    if (subscribed.type !== 'subscribed') throw new Error(`subscribe ${channel}: ${JSON.stringify(subscribed)}`)
    await this.barrier()
    const at = this.frames.indexOf(subscribed)
    const next = this.frames[at + 1]
    const state = next && next.channel === channel && (next.type === 'snapshot' || next.type === 'deleted') ? next : null
    return { subscribed, state }
  }

  /** Frames of one channel, in arrival order. */
  on (channel: string, type?: string): Frame[] {
    return this.frames.filter((f) => f.channel === channel && f.type !== 'error' && f.type !== 'subscribed' && f.type !== 'unsubscribed' && (type === undefined || f.type === type))
  }

  close (): void {
    this.ws.close()
  }

  terminate (): void {
    this.ws.terminate()
  }
}

/** Channel state as a client holds it. */
export class ChannelState {
  /** Versioned channels and user votes: the value and version held. */
  readonly values = new Map<string, { version: number | null, data: unknown }>()
  /** The `logos` list by id. */
  readonly list = new Map<string, Logo>()
  listLoaded = false

  apply (f: Frame): void {
    if (!f.channel || !f.type || f.type === 'subscribed' || f.type === 'unsubscribed' || f.type === 'error') return
    if (f.channel === 'logos') { this.applyList(f); return }
    const held = this.values.get(f.channel)
    const version = f.version ?? null
    if (f.type === 'snapshot' || version === null || held?.version == null || version > held.version) {
      this.values.set(f.channel, { version, data: f.type === 'deleted' ? null : f.data })
    }
  }

  private applyList (f: Frame): void {
    switch (f.type) {
      case 'snapshot':
        this.list.clear()
        for (const logo of f.data as Logo[]) this.list.set(logo._id, logo)
        this.listLoaded = true
        break
      case 'created':
      case 'updated': {
        const logo = f.data as Logo
        const held = this.list.get(logo._id)
        if (!held || held.version < logo.version) this.list.set(logo._id, logo)
        break
      }
      case 'deleted':
        this.list.delete((f.data as { _id: string })._id)
        break
      case 'votes':
        for (const [id, entry] of Object.entries(f.data as Record<string, { totalVotes: number, version: number }>)) {
          const held = this.list.get(id)
          if (held && held.version < entry.version) this.list.set(id, { ...held, totalVotes: entry.totalVotes, version: entry.version })
        }
        break
    }
  }

  value (channel: string): unknown {
    return this.values.get(channel)?.data
  }

  version (channel: string): number | null {
    return this.values.get(channel)?.version ?? null
  }

  /** The list sorted like GET /logos (by id, for a stable comparison). */
  sortedList (): Logo[] {
    return [...this.list.values()].sort((a, b) => a._id.localeCompare(b._id))
  }
}
