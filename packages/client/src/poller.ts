// REST polling per channel: however many ask (every card of a gallery), one timer per channel,
// at the shortest interval asked for, ticking only while it is wanted (the socket is not open).
type Timer = ReturnType<typeof setInterval>

export class Pollers {
  private readonly channels = new Map<string, { asks: number[], ms: number, timer?: Timer }>()

  /** `tick(channel)` is called every interval; it decides whether to read. */
  constructor (private readonly tick: (channel: string) => void) {}

  /** Asks for `channel` to be polled every `intervalMs`, until the returned function is called. */
  add (channel: string, intervalMs: number): () => void {
    let p = this.channels.get(channel)
    if (!p) this.channels.set(channel, p = { asks: [], ms: 0 })
    const poller = p
    poller.asks.push(intervalMs)
    this.arm(channel, poller)
    let on = true
    return () => {
      if (!on) return
      on = false
      poller.asks.splice(poller.asks.indexOf(intervalMs), 1)
      this.arm(channel, poller)
    }
  }

  close (): void {
    for (const p of this.channels.values()) clearInterval(p.timer)
    this.channels.clear()
  }

  private arm (channel: string, p: { asks: number[], ms: number, timer?: Timer }): void {
    const ms = p.asks.length ? Math.min(...p.asks) : 0
    if (ms === p.ms) return
    clearInterval(p.timer)
    p.ms = ms
    if (!ms) {
      this.channels.delete(channel)
      return
    }
    p.timer = setInterval(() => this.tick(channel), ms);
    // In Node a poll alone should not keep the process alive (the connection's retries do).
    (p.timer as { unref?: () => void }).unref?.()
  }
}
