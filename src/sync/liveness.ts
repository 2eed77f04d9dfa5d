// Timers over connections: server heartbeats (a peer that misses a ping is dropped) and the
// drain of slow consumers (held-back changes go out as the socket empties; a client behind for
// too long is closed with 4009).
import { CloseCode } from '../protocol.js'
import type { SyncConnection } from './connection.js'

const BACKLOG_CHECK_MS = 25
/**
 * Heartbeat pings go out in slices, a slice every HEARTBEAT_TICK_MS at most, instead of to every
 * connection at once: a ping costs about 20 µs of CPU, so 10,000 of them in one burst hold the
 * event loop for about 200 ms, and every change that arrives meanwhile waits for the burst
 * (measured as the delivery p99 of bench/connections-10k.bench.ts).
 */
export const HEARTBEAT_TICK_MS = 100

/** Timer callbacks must never throw (it would take the process down); a socket error is not worth it. */
function guard (fn: () => void): void {
  try { fn() } catch { /* a socket that failed mid-call closes itself and is cleaned up on 'close' */ }
}

export class Liveness {
  private heartbeat: NodeJS.Timeout | undefined
  private backlogTimer: NodeJS.Timeout | undefined
  private readonly behind = new Set<SyncConnection>()
  /** Ticks per heartbeat interval: a round of pings starts every `slices` ticks. */
  private readonly slices: number
  /** How long a peer has to answer a ping (the interval, less half a tick of timer jitter). */
  private readonly answerMs: number
  private tick = 0
  /** The round in progress: connections not yet visited in it, and how many to visit per tick. */
  private round: { rest: Iterator<SyncConnection>, perTick: number } | null = null

  constructor (private readonly connections: ReadonlySet<SyncConnection>, heartbeatMs: number) {
    const tickMs = Math.max(1, Math.min(HEARTBEAT_TICK_MS, heartbeatMs / 10))
    this.slices = Math.max(1, Math.round(heartbeatMs / tickMs))
    this.answerMs = heartbeatMs - tickMs / 2
    this.heartbeat = setInterval(() => guard(() => this.beat()), tickMs)
    this.heartbeat.unref()
  }

  /**
   * Every heartbeat interval a round visits every peer once, a slice per tick: a peer that
   * answered its last ping is pinged again; one that has not answered it for a whole interval is
   * terminated (1006); one pinged less than an interval ago waits for the next round (its place
   * in a round moves as others come and go). So a dead peer is dropped within about three
   * intervals of its last answer, and a live one always has a whole interval to answer.
   */
  private beat (): void {
    if (this.tick++ % this.slices === 0) {
      this.round = this.connections.size === 0 ? null : { rest: this.connections.values(), perTick: Math.ceil(this.connections.size / this.slices) }
    }
    const round = this.round
    if (round === null) return
    const now = performance.now()
    for (let i = 0; i < round.perTick; i++) {
      const next = round.rest.next()
      if (next.done === true) { this.round = null; return }
      const conn = next.value
      if (conn.alive) {
        conn.alive = false
        conn.pingedAt = now
        try { conn.socket.ping() } catch { /* already closing */ }
      } else if (now - conn.pingedAt >= this.answerMs) {
        conn.closeCode = CloseCode.abnormal
        conn.socket.terminate()
      }
    }
  }

  /** A connection started holding changes back: drain it until it catches up or is too slow. */
  watch (conn: SyncConnection): void {
    this.behind.add(conn)
    if (this.backlogTimer) return
    this.backlogTimer = setInterval(() => guard(() => this.drain()), BACKLOG_CHECK_MS)
    this.backlogTimer.unref()
  }

  forget (conn: SyncConnection): void {
    this.behind.delete(conn)
  }

  private drain (): void {
    for (const conn of this.behind) {
      const state = conn.drain()
      if (state === 'behind') continue
      this.behind.delete(conn)
      if (state === 'slow') conn.close(CloseCode.slowConsumer, 'client too slow to keep up')
    }
    if (this.behind.size === 0) {
      clearInterval(this.backlogTimer)
      this.backlogTimer = undefined
    }
  }

  stop (): void {
    clearInterval(this.heartbeat)
    clearInterval(this.backlogTimer)
    this.heartbeat = undefined
    this.backlogTimer = undefined
    this.behind.clear()
  }
}
