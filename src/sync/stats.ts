// What the sync hub counts, for its metrics (declared in plugins/sync.ts) and tests to read.
// Decorated on the app as `fastify.syncStats`.
//
// Plain numbers (read them at scrape time):
//   connections, subscriptions, channels   gauges: open connections, subscriptions over all
//                                          connections, channels with at least one local subscriber
//   framesIn, framesOut, bytesOut          counters over all connections
//   framesInByOp, framesOutByType          the same, by `op` / by frame `type`
//   broadcasts                             changes serialised for fanout (once each, whatever the recipients)
//   superseded                             frames a slow consumer never got because a newer one replaced them
//   disconnects                            by WebSocket close code (1006 = dropped without a close frame)
//   resyncs                                subscribes by `since` outcome: current (nothing sent), stale
//                                          (state sent), none (no `since`, or a whole channel)
//   busResyncs                             times the bus came back from a gap and every channel was re-read
//   rateLimited, errors                    refusals: frames over SYNC_RATE_LIMIT; error frames by code
//
// Samples (durations) go to `observers`, since a histogram needs every value, not a total:
//   fanout(seconds, recipients)            time to hand one broadcast to every local subscriber
//   delivery(seconds)                      from BusMessage.publishedAt (any replica) to local fanout
// and observers also hear every counter event above as it happens (frameIn, frameOut, ...).
import type { ErrorCode } from '../protocol.js'

export type SinceOutcome = 'current' | 'stale' | 'none'

export interface SyncObserver {
  connection? (open: boolean): void
  frameIn? (op: string): void
  frameOut? (type: string, bytes: number): void
  disconnect? (code: number): void
  resync? (outcome: SinceOutcome): void
  rateLimited? (): void
  error? (code: ErrorCode): void
  fanout? (seconds: number, recipients: number): void
  delivery? (seconds: number): void
  busResync? (): void
}

export class SyncStats {
  connections = 0
  subscriptions = 0
  channels = 0
  framesIn = 0
  framesOut = 0
  bytesOut = 0
  broadcasts = 0
  superseded = 0
  busResyncs = 0
  rateLimited = 0
  readonly framesInByOp: Record<string, number> = {}
  readonly framesOutByType: Record<string, number> = {}
  readonly disconnects: Record<string, number> = {}
  readonly errors: Partial<Record<ErrorCode, number>> = {}
  readonly resyncs: Record<SinceOutcome, number> = { current: 0, stale: 0, none: 0 }
  readonly observers = new Set<SyncObserver>()

  connection (open: boolean): void {
    this.connections += open ? 1 : -1
    for (const o of this.observers) o.connection?.(open)
  }

  frameIn (op: string): void {
    this.framesIn++
    this.framesInByOp[op] = (this.framesInByOp[op] ?? 0) + 1
    for (const o of this.observers) o.frameIn?.(op)
  }

  frameOut (type: string, bytes: number): void {
    this.framesOut++
    this.bytesOut += bytes
    this.framesOutByType[type] = (this.framesOutByType[type] ?? 0) + 1
    for (const o of this.observers) o.frameOut?.(type, bytes)
  }

  disconnect (code: number): void {
    this.disconnects[code] = (this.disconnects[code] ?? 0) + 1
    for (const o of this.observers) o.disconnect?.(code)
  }

  resync (outcome: SinceOutcome): void {
    this.resyncs[outcome]++
    for (const o of this.observers) o.resync?.(outcome)
  }

  limited (): void {
    this.rateLimited++
    for (const o of this.observers) o.rateLimited?.()
  }

  error (code: ErrorCode): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1
    for (const o of this.observers) o.error?.(code)
  }

  fanout (seconds: number, recipients: number): void {
    this.broadcasts++
    for (const o of this.observers) o.fanout?.(seconds, recipients)
  }

  delivery (seconds: number): void {
    for (const o of this.observers) o.delivery?.(seconds)
  }

  busResync (): void {
    this.busResyncs++
    for (const o of this.observers) o.busResync?.()
  }
}
