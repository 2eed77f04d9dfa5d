// Timers over connections: server heartbeats (a peer that misses a ping is dropped) and the
// drain of slow consumers (held-back changes go out as the socket empties; a client behind for
// too long is closed with 4009).
import { CloseCode } from '../protocol.js'
import type { SyncConnection } from './connection.js'

const BACKLOG_CHECK_MS = 25

/** Timer callbacks must never throw (it would take the process down); a socket error is not worth it. */
function guard (fn: () => void): void {
  try { fn() } catch { /* a socket that failed mid-call closes itself and is cleaned up on 'close' */ }
}

export class Liveness {
  private heartbeat: NodeJS.Timeout | undefined
  private backlogTimer: NodeJS.Timeout | undefined
  private readonly behind = new Set<SyncConnection>()

  constructor (private readonly connections: ReadonlySet<SyncConnection>, heartbeatMs: number) {
    this.heartbeat = setInterval(() => guard(() => this.beat()), heartbeatMs)
    this.heartbeat.unref()
  }

  /** Pings every peer; one that did not answer the previous ping is terminated (1006). */
  private beat (): void {
    for (const conn of this.connections) {
      if (!conn.alive) {
        conn.closeCode = CloseCode.abnormal
        conn.socket.terminate()
        continue
      }
      conn.alive = false
      try { conn.socket.ping() } catch { /* already closing */ }
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
