// Dead-connection detection. A browser cannot see the server's protocol-level pings, so the
// client watches for silence instead: after `heartbeatMs` (from `welcome`) without a frame it
// sends a `ping` op, and a ping unanswered for the pong timeout means the connection is dead
// (a laptop that slept, a NAT that forgot us, a server that vanished without a FIN).
import type { ClientFrame, PongFrame } from './protocol.js'
import type { ServerClock } from './timing.js'
import { SyncError } from './types.js'

export const DEFAULT_HEARTBEAT_MS = 25_000

interface PendingPing { sentAt: number, resolve: (rttMs: number) => void, reject: (err: Error) => void }

export interface HeartbeatDeps {
  send (frame: ClientFrame): boolean
  nextId (): number
  /** No answer in time: drop the connection. */
  dead (): void
  clock: ServerClock
  /** Fixed pong timeout (ms); by default the heartbeat, between 1 s and 10 s. */
  pongTimeoutMs?: number
}

export class Heartbeat {
  private heartbeatMs = DEFAULT_HEARTBEAT_MS
  private lastSeen = 0
  private pingSentAt = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  /** Bumped by start/stop, so a tick of a stopped heartbeat does not schedule another. */
  private run = 0
  private readonly pings = new Map<number, PendingPing>()

  constructor (private readonly deps: HeartbeatDeps) {}

  /** Any frame (or a protocol ping from the server) is a sign of life. */
  seen (): void {
    this.lastSeen = Date.now()
    this.pingSentAt = 0
  }

  start (heartbeatMs: number): void {
    if (Number.isFinite(heartbeatMs) && heartbeatMs > 0) this.heartbeatMs = heartbeatMs
    this.run++
    this.seen()
    this.schedule()
  }

  stop (): void {
    this.run++
    clearTimeout(this.timer)
    this.timer = undefined
    this.pingSentAt = 0
    for (const ping of this.pings.values()) ping.reject(new SyncError('Connection lost', 'network_error'))
    this.pings.clear()
  }

  /** Pings when nothing arrived for a heartbeat (or at once with `force`); an unanswered ping past the timeout is a dead connection. */
  check (force = false): void {
    const now = Date.now()
    const pongTimeout = this.pongTimeout()
    if (this.pingSentAt) {
      if (now - this.pingSentAt >= pongTimeout) this.deps.dead()
      return
    }
    if (force || now - this.lastSeen >= this.heartbeatMs) {
      if (this.deps.send({ op: 'ping' })) this.pingSentAt = now
    }
  }

  private pongTimeout (): number {
    return this.deps.pongTimeoutMs ?? Math.min(Math.max(this.heartbeatMs, 1_000), 10_000)
  }

  /** An explicit round-trip measurement; resolves with the RTT in ms, rejects after the pong timeout. */
  ping (): Promise<number> {
    const id = this.deps.nextId()
    return new Promise((resolve, reject) => {
      if (!this.deps.send({ op: 'ping', id })) return reject(new SyncError('Not connected', 'network_error'))
      const timer = setTimeout(() => {
        if (this.pings.delete(id)) reject(new SyncError('No pong in time', 'network_error'))
      }, this.pongTimeout())
      this.pings.set(id, {
        sentAt: Date.now(),
        resolve: (rtt) => { clearTimeout(timer); resolve(rtt) },
        reject: (err) => { clearTimeout(timer); reject(err) }
      })
    })
  }

  pong (frame: PongFrame, now: number): void {
    const pending = typeof frame.id === 'number' ? this.pings.get(frame.id) : undefined
    if (!pending) return
    this.pings.delete(frame.id as number)
    this.deps.clock.sample(frame.serverTime, pending.sentAt, now)
    pending.resolve(now - pending.sentAt)
  }

  private schedule (): void {
    clearTimeout(this.timer)
    const run = this.run
    const tick = Math.max(25, Math.min(this.heartbeatMs / 2, 5_000))
    this.timer = setTimeout(() => {
      this.check()
      if (run === this.run) this.schedule()
    }, tick)
    // In Node the socket keeps the process alive; the heartbeat alone should not.
    ;(this.timer as { unref?: () => void }).unref?.()
  }
}
