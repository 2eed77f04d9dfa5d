// Outgoing frames, paced: at most `maxPerSecond` per one-second window. A burst of
// resubscribes after a reconnect waits its turn instead of tripping the server's inbound rate
// limit (`SYNC_RATE_LIMIT`, then close 4008). Queued frames die with the socket they were for.
import type { ClientFrame } from './protocol.js'

export class Outbox {
  private queue: ClientFrame[] = []
  private write: ((frame: ClientFrame) => boolean) | null = null
  private windowStart = 0
  private sentInWindow = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor (private maxPerSecond: number) {}

  /** The server said we send too fast (`rate_limited`, close 4008): half the pace from now on (at least 1 a second). */
  slowDown (): void {
    this.maxPerSecond = Math.max(1, Math.floor(this.maxPerSecond / 2))
  }

  /** Frames go to this socket from now on; `write` returns false once the socket is not open. */
  attach (write: (frame: ClientFrame) => boolean): void {
    this.detach()
    this.write = write
  }

  detach (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.queue = []
    this.write = null
  }

  send (frame: ClientFrame): boolean {
    if (!this.write) return false
    this.queue.push(frame)
    this.flush()
    return true
  }

  private flush (): void {
    while (this.write && this.queue.length > 0) {
      const now = Date.now()
      if (now - this.windowStart >= 1_000) {
        this.windowStart = now
        this.sentInWindow = 0
      }
      if (this.sentInWindow >= this.maxPerSecond) {
        clearTimeout(this.timer)
        this.timer = setTimeout(() => this.flush(), this.windowStart + 1_000 - now)
        return
      }
      this.sentInWindow++
      if (!this.write(this.queue.shift()!)) return this.detach()
    }
  }
}
