// Small pure helpers for time: reconnect backoff, token expiry, the server's clock.

/**
 * Exponential backoff with full jitter, bounded: a uniformly random delay in
 * [min, min(max, base * 2^attempt)]. Full jitter spreads a crowd of clients reconnecting to a
 * restarted server instead of bringing them back in waves.
 *
 * `spread`: the close sent many clients away at once (closeRule: 1001 shutdown, 4008, 4009). The window is
 * then at least [spreadMin, spreadMax] (defaults 500 ms, 5 s), still bounded by max, so a whole
 * replica's clients do not land on the other replicas within the same half second.
 */
export function backoffDelay (
  attempt: number,
  opts: { minDelayMs: number, baseDelayMs: number, maxDelayMs: number, spreadMinDelayMs?: number, spreadMaxDelayMs?: number },
  random: () => number = Math.random,
  spread = false
): number {
  let ceiling = opts.baseDelayMs * 2 ** Math.min(attempt, 30)
  let low = opts.minDelayMs
  if (spread) {
    low = Math.max(low, opts.spreadMinDelayMs ?? 500)
    ceiling = Math.max(ceiling, opts.spreadMaxDelayMs ?? 5_000)
  }
  ceiling = Math.min(opts.maxDelayMs, ceiling)
  low = Math.min(low, ceiling)
  return Math.round(low + random() * (ceiling - low))
}

/** The claims the client cares about, read without verifying (the server verifies). */
export function tokenClaims (token: string): { exp?: number, sub?: string } | null {
  const payload = token.split('.')[1]
  if (!payload) return null
  try {
    const json = JSON.parse(base64UrlDecode(payload)) as { exp?: unknown, sub?: unknown }
    return {
      exp: typeof json.exp === 'number' && Number.isFinite(json.exp) ? json.exp : undefined,
      sub: typeof json.sub === 'string' ? json.sub : undefined
    }
  } catch {
    return null
  }
}

/** The `exp` claim of a JWT in ms, or null. */
export function tokenExpiry (token: string): number | null {
  const exp = tokenClaims(token)?.exp
  return exp === undefined ? null : exp * 1000
}

function base64UrlDecode (input: string): string {
  const b64 = input.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(input.length / 4) * 4, '=')
  const binary = atob(b64)
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0))
  return new TextDecoder().decode(bytes)
}

/**
 * When to ask for a new token: `margin` before expiry, but never later than four fifths of the
 * remaining lifetime, so short-lived tokens are refreshed in time too.
 */
export function refreshDelay (expiresAt: number, now: number, marginMs: number): number {
  const remaining = expiresAt - now
  if (remaining <= 0) return 0
  return Math.max(0, remaining - Math.min(marginMs, remaining / 5))
}

/**
 * An estimate of the server's clock: offset = serverTime - local midpoint of the exchange.
 * The sample with the shortest round trip wins for a while, since it bounds the error best.
 */
export class ServerClock {
  /** `onChange` hears of a new estimate (countdowns re-render with it). */
  constructor (private readonly onChange: (offsetMs: number) => void = () => {}) {}

  private offset = 0
  private bestRtt = Number.POSITIVE_INFINITY
  private bestAt = 0

  /** `sentAt`/`receivedAt` in local ms; for one-way samples (welcome) pass sentAt = receivedAt. */
  sample (serverTimeIso: string, sentAt: number, receivedAt: number): void {
    const serverTime = Date.parse(serverTimeIso)
    if (!Number.isFinite(serverTime)) return
    const rtt = Math.max(0, receivedAt - sentAt)
    // Older samples lose their edge after a minute: clocks drift and networks change.
    const stale = receivedAt - this.bestAt > 60_000
    if (rtt <= this.bestRtt || stale) {
      const before = this.offset
      this.offset = serverTime - (sentAt + receivedAt) / 2
      this.bestRtt = rtt
      this.bestAt = receivedAt
      if (Math.abs(this.offset - before) >= 1) this.onChange(this.offset)
    }
  }

  get offsetMs (): number { return this.offset }
  now (): number { return Date.now() + this.offset }
}
