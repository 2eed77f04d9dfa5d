// A shard of subscribers in a process of its own (a load child: bench/lib.ts serveLoad, pinned to
// the load core). It holds connections to any of the three servers (bench/realtime/common.ts),
// each subscribed to its channels, and measures every change frame it gets: publish-to-delivery
// from the µs stamp in the logo's title. Commands (one `run` each):
//   open   { group, target, url, count, offset, plan }  open `count` connections, subscribe, wait for every answer
//   start  {}                                           forget what was measured; measuring from now
//   stop   { expect?, waitMs? }                         wait until `expect` change frames arrived (or waitMs), report
//   close  { group? }                                   close a group's connections (all when omitted)
// Frames are not JSON-parsed: the stamp is found in the raw text (a subscriber's parse is not what
// is measured, and the load core has to keep up with 10,000 sockets).
import { createSigner } from 'fast-jwt'
import { WebSocket } from 'ws'
import { serveLoad } from '../lib.js'
import { Histogram, JWT_SECRET, nowUs, STAMP, type SparseHistogram, type Target } from './common.js'

/** What each connection subscribes to. */
export type Plan =
  /** Every connection on these channels; none: connected and idle (ready at `welcome`, or at open on the others). */
  | { kind: 'channels', channels: string[] }
  /**
   * The realistic mix of issue 14: the list, `perConn` logos (picked by the connection's index),
   * their vote counts, and the user's own private channel (a token per connection, user `u<n>`).
   */
  | { kind: 'mix', logos: string[], perConn: number }

export type Command =
  | { cmd: 'open', group: string, target: Target, url: string, count: number, offset: number, plan: Plan }
  | { cmd: 'start' }
  | { cmd: 'stop', expect?: number, waitMs?: number }
  | { cmd: 'close', group?: string }

export interface OpenResult { opened: number, failed: number, errors: string[], subscriptions: number }
export interface StopResult { frames: number, stamped: number, hist: SparseHistogram, errorFrames: number, cpuUs: number, wallMs: number, open: number }

const STAMP_AT = `"title":"${STAMP}`
const hist = new Histogram()
let frames = 0
let stamped = 0
let errorFrames = 0
let cpu0 = process.cpuUsage()
let t0 = performance.now()
const groups = new Map<string, WebSocket[]>()
const sign = createSigner({ key: JWT_SECRET, algorithm: 'HS256', expiresIn: 6 * 3_600_000 })

function onChange (text: string): void {
  frames++
  const at = text.indexOf(STAMP_AT)
  if (at < 0) return
  const from = at + STAMP_AT.length
  const to = text.indexOf('"', from)
  const sent = Number(text.slice(from, to))
  if (!Number.isFinite(sent)) return
  stamped++
  hist.record(nowUs() - sent)
}

function channelsOf (plan: Plan, n: number): string[] {
  if (plan.kind === 'channels') return plan.channels
  const picked: string[] = []
  for (let k = 0; k < plan.perConn; k++) picked.push(plan.logos[(n * 7 + k * 3) % plan.logos.length])
  const unique = [...new Set(picked)]
  return ['logos', ...unique.map((id) => `logos.${id}`), ...unique.map((id) => `logos.${id}.votes`), `users.u${n}.votes`]
}

/** Opens one connection and resolves once every subscription is answered (or rejects). */
function connect (target: Target, url: string, n: number, plan: Plan): Promise<{ ws: WebSocket, subs: number }> {
  const channels = channelsOf(plan, n)
  const full = plan.kind === 'mix' && target === 'ours' ? `${url}?token=${sign({ sub: `u${n}`, role: 'user' })}` : url
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(full, { perMessageDeflate: false })
    let answered = 0
    let settled = false
    const timer = setTimeout(() => fail(new Error(`no answer to every subscribe within 60 s (${answered}/${channels.length})`)), 60_000)
    const fail = (err: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      ws.terminate()
      reject(err)
    }
    const answer = () => {
      if (++answered === channels.length && !settled) {
        settled = true
        clearTimeout(timer)
        resolve({ ws, subs: channels.length })
      }
    }
    ws.on('error', fail)
    ws.on('close', () => fail(new Error('closed before subscribed')))
    const idle = channels.length === 0
    // Nothing to subscribe to: ready once connected (ours says so with its welcome).
    if (idle) answered = -1
    ws.on('open', () => {
      if (idle && target === 'bare') answer()
      if (target === 'socketio') return // waits for the engine.io open packet
      channels.forEach((channel, i) => ws.send(JSON.stringify({ op: 'subscribe', channel, id: i })))
    })
    ws.on('message', (data) => {
      const text = String(data)
      if (target === 'socketio') {
        // engine.io packets: 0 open, 2 ping, 4 message; socket.io inside: 0 connect, 2 event.
        if (text === '2') { ws.send('3'); return }
        if (text.startsWith('0')) { ws.send('40'); return }
        if (text.startsWith('40') && idle) { answer(); return }
        if (text.startsWith('40')) { for (const c of channels) ws.send(`42${JSON.stringify(['subscribe', c])}`); return }
        if (text.startsWith('42["subscribed"')) { answer(); return }
        if (text.startsWith('42["frame"')) onChange(text)
        return
      }
      if (text.startsWith('{"type":"subscribed"')) { answer(); return }
      if (idle && text.startsWith('{"type":"welcome"')) { answer(); return }
      if (text.startsWith('{"type":"error"')) { errorFrames++; if (!settled) fail(new Error(text)); return }
      if (text.startsWith('{"type"')) return // welcome, pong
      // Channel frames; snapshots ('"type":"snapshot"') are the subscribe's, not a change.
      if (text.includes('"type":"snapshot"')) return
      onChange(text)
    })
  })
}

async function open (c: Extract<Command, { cmd: 'open' }>): Promise<OpenResult> {
  const list = groups.get(c.group) ?? []
  groups.set(c.group, list)
  const errors: string[] = []
  let opened = 0
  let subscriptions = 0
  let next = 0
  // A bounded number of handshakes in flight: a burst of 10,000 would only queue in the kernel.
  await Promise.all(Array.from({ length: Math.min(100, c.count) }, async () => {
    while (next < c.count) {
      const n = c.offset + next++
      try {
        const { ws, subs } = await connect(c.target, c.url, n, c.plan)
        ws.removeAllListeners('close')
        ws.removeAllListeners('error')
        ws.on('error', () => {})
        list.push(ws)
        opened++
        subscriptions += subs
      } catch (err) {
        if (errors.length < 5) errors.push(String(err))
      }
    }
  }))
  return { opened, failed: c.count - opened, errors, subscriptions }
}

serveLoad<Command, unknown>(async (c) => {
  switch (c.cmd) {
    case 'open':
      return await open(c)
    case 'start':
      hist.reset()
      frames = 0
      stamped = 0
      errorFrames = 0
      cpu0 = process.cpuUsage()
      t0 = performance.now()
      return {}
    case 'stop': {
      const deadline = performance.now() + (c.waitMs ?? 0)
      while (c.expect !== undefined && frames < c.expect && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
      const cpu = process.cpuUsage(cpu0)
      let openCount = 0
      for (const list of groups.values()) for (const ws of list) if (ws.readyState === ws.OPEN) openCount++
      const out: StopResult = { frames, stamped, hist: hist.sparse(), errorFrames, cpuUs: cpu.user + cpu.system, wallMs: performance.now() - t0, open: openCount }
      return out
    }
    case 'close': {
      const names = c.group === undefined ? [...groups.keys()] : [c.group]
      for (const name of names) {
        const list = groups.get(name) ?? []
        await Promise.all(list.map((ws) => new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) { resolve(); return }
          ws.once('close', () => resolve())
          ws.terminate()
        })))
        groups.delete(name)
      }
      return {}
    }
  }
})
