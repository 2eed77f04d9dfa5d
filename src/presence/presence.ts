// Presence on one replica: which of its connections are present (subscribed to the presence
// channel), and the total across replicas, kept from the backend's views. Local joins and
// leaves count at once; other replicas' arrive as views. What it costs is bounded whatever the
// churn: a member is one Set entry; reports to the backend run one at a time (changes made
// while one is out go in the next); totals reach clients at most once per conflation window.
import type { PresenceBackend, PresenceView } from './types.js'
import { settleWithin } from '../timeout.js'

export interface PresenceOptions {
  backend: PresenceBackend
  replicaId: string
  /**
   * The replica refreshes its entry every half of this, and the backend keeps an entry for
   * twice this without a refresh: a replica that died unannounced drops out of every total
   * within 2.5 × heartbeatMs (its entry expires, and the next refresh of any other replica
   * that has members removes it).
   */
  heartbeatMs: number
  /** At most one total per window goes to clients (the newest). */
  conflateMs: number
  /** Sends a new total to this replica's subscribers; `seq` numbers the pushes (see `seq`). */
  push: (total: number, seq: number) => void
  log: { warn (obj: object, msg: string): void }
}

/** The backend's time to live for an entry, given the heartbeat (see PresenceOptions.heartbeatMs). */
export const presenceTtlMs = (heartbeatMs: number) => 2 * heartbeatMs

export class Presence {
  private readonly members = new Set<object>()
  /** Other replicas' counts, from the newest view. */
  private others: Record<string, number> = {}
  /** The newest view applied (views arrive as answers and as notifications, in any order). */
  private viewSeq = 0
  private reporting = false
  private attempted = false
  /** The report out now (settled when none is). */
  private inFlight: Promise<unknown> = Promise.resolve()
  private reportAgain = false
  /** What the backend holds for this replica (0: no entry). */
  private reported = 0
  private lastPushed: number | null = null
  private pushes = 0
  private lastPushAt = 0
  private pushTimer: NodeJS.Timeout | undefined
  private readonly heartbeat: NodeJS.Timeout
  private readonly unwatch: Array<() => void>
  private closed = false
  private failing = false

  constructor (private readonly opts: PresenceOptions) {
    this.unwatch = [
      opts.backend.watch((view) => this.apply(view)),
      opts.backend.onGap(() => this.report())
    ]
    this.heartbeat = setInterval(() => {
      // A replica with nobody present has no entry to keep alive and nobody to tell.
      if (this.members.size > 0 || this.reported > 0) this.report()
    }, Math.max(50, Math.floor(opts.heartbeatMs / 2)))
    this.heartbeat.unref()
  }

  /** People present across all replicas, as this replica knows it now. */
  get total (): number {
    let sum = this.members.size
    for (const [replica, n] of Object.entries(this.others)) if (replica !== this.opts.replicaId) sum += n
    return sum
  }

  /** How many totals were pushed so far: a state read now covers every one of them. */
  get seq (): number { return this.pushes }

  /** `member` (a connection) is present; false when it already was. */
  join (member: object): boolean {
    if (this.closed || this.members.has(member)) return false
    this.members.add(member)
    this.changed()
    return true
  }

  leave (member: object): void {
    if (this.members.delete(member)) this.changed()
  }

  /** Stops, and removes this replica's entry so others need not wait for it to expire (bounded). */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.heartbeat)
    clearTimeout(this.pushTimer)
    for (const off of this.unwatch) off()
    this.members.clear()
    // After the report still out, so that one cannot land after the 0 and bring the entry back.
    const removal = this.inFlight.catch(() => {}).then(() => {
      // Whenever any report was sent: even a failed one may have reached the backend.
      if (this.attempted) return this.opts.backend.report(this.opts.replicaId, 0)
    }).catch(() => {})
    await settleWithin(removal, 1000)
  }

  private changed (): void {
    this.schedulePush()
    this.report()
  }

  /** One report at a time; whatever changed while it was out is sent by the next. */
  private report (): void {
    if (this.closed) return
    if (this.reporting) {
      this.reportAgain = true
      return
    }
    this.reporting = true
    this.reportAgain = false
    const count = this.members.size
    this.attempted = true
    this.inFlight = this.opts.backend.report(this.opts.replicaId, count).then((view) => {
      this.reported = count
      if (this.failing) this.failing = false
      this.apply(view)
    }, (err: unknown) => {
      // The next change or heartbeat tries again; meanwhile totals hold what was last known.
      if (!this.failing) this.opts.log.warn({ err }, 'presence report failed; retrying on the next heartbeat')
      this.failing = true
    }).finally(() => {
      this.reporting = false
      if (this.reportAgain) this.report()
    })
  }

  private apply (view: PresenceView): void {
    if (view.seq <= this.viewSeq || this.closed) return
    this.viewSeq = view.seq
    this.others = view.members
    this.schedulePush()
  }

  private schedulePush (): void {
    if (this.pushTimer || this.closed) return
    const wait = this.lastPushAt + this.opts.conflateMs - Date.now()
    if (wait <= 0) {
      this.flush()
      return
    }
    this.pushTimer = setTimeout(() => {
      this.pushTimer = undefined
      this.flush()
    }, wait)
    this.pushTimer.unref()
  }

  private flush (): void {
    const total = this.total
    if (total === this.lastPushed) return
    this.lastPushed = total
    this.lastPushAt = Date.now()
    this.opts.push(total, ++this.pushes)
  }
}
