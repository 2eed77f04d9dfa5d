// Vote to screen, from the user's side (a load child: bench/lib.ts serveLoad, on the load core).
// One run: a subscriber on replica B holds `logos.<id>.votes` for every logo; votes go to replica A
// over HTTP at a fixed rate (open loop: a vote is sent on schedule whether or not the earlier ones
// were answered), each from a user of its own. For each vote: its HTTP time, and the time from
// sending it to the first frame on B carrying its logo at its version or newer (what the voter's
// friend on another replica sees). One process, one monotonic clock for both ends.
import { createSigner } from 'fast-jwt'
import { WebSocket } from 'ws'
import { serveLoad } from '../lib.js'
import { JWT_SECRET, nowUs } from './common.js'

export interface VoteRun {
  /** Replica A (votes) and B (the subscriber). */
  voteUrl: string
  watchWsUrl: string
  logos: string[]
  ratePerS: number
  seconds: number
  /** Unique per run: users are `${userPrefix}${n}`. */
  userPrefix: string
  /** How long to wait after the last answer for the last frames (conflation window + slack). */
  settleMs: number
}

export interface VoteResult {
  sent: number
  ok: number
  bad: number
  statuses: Record<string, number>
  /** Per answered vote, ms. */
  httpMs: number[]
  /** Per answered vote whose frame arrived, ms from sending the vote. */
  frameMs: number[]
  /** Answered votes whose version never showed up on B. */
  missing: number
  frames: number
  /** Seconds the sending took (should be ratePerS × seconds / ratePerS). */
  sendSeconds: number
}

const sign = createSigner({ key: JWT_SECRET, algorithm: 'HS256', expiresIn: 3_600_000 })
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

async function run (r: VoteRun): Promise<VoteResult> {
  // What B shows: per logo, the arrival time of each version (ascending).
  const seen = new Map<string, Array<[version: number, atUs: number]>>(r.logos.map((id) => [id, []]))
  let frames = 0
  const ws = new WebSocket(r.watchWsUrl, { perMessageDeflate: false })
  await new Promise<void>((resolve, reject) => {
    let answered = 0
    ws.on('error', reject)
    ws.on('open', () => r.logos.forEach((id, i) => ws.send(JSON.stringify({ op: 'subscribe', channel: `logos.${id}.votes`, id: i }))))
    ws.on('message', (data) => {
      const at = nowUs()
      const f = JSON.parse(String(data)) as { type: string, channel?: string, version?: number }
      if (f.type === 'subscribed' && ++answered === r.logos.length) resolve()
      if (f.type !== 'updated' || f.channel === undefined || typeof f.version !== 'number') return
      frames++
      seen.get(f.channel.slice('logos.'.length, -'.votes'.length))?.push([f.version, at])
    })
  })

  const count = Math.max(1, Math.round(r.ratePerS * r.seconds))
  const tokens = Array.from({ length: count }, (_, n) => sign({ sub: `${r.userPrefix}${n}`, role: 'user' }))
  const votes: Array<{ logo: string, sentUs: number, doneUs: number, status: number, version: number | null }> = []
  const statuses: Record<string, number> = {}
  const t0 = performance.now()
  const inflight: Promise<void>[] = []
  for (let n = 0; n < count; n++) {
    const wait = t0 + (n * 1000) / r.ratePerS - performance.now()
    if (wait > 0) await sleep(wait)
    const logo = r.logos[n % r.logos.length]
    inflight.push((async () => {
      const sentUs = nowUs()
      let status = 0
      let version: number | null = null
      try {
        const res = await fetch(`${r.voteUrl}/logos/${logo}/votes`, { method: 'POST', headers: { authorization: `Bearer ${tokens[n]}` } })
        status = res.status
        const body = await res.json() as { version?: number }
        if (res.ok && typeof body.version === 'number') version = body.version
      } catch {
        status = -1
      }
      statuses[status] = (statuses[status] ?? 0) + 1
      votes.push({ logo, sentUs, doneUs: nowUs(), status, version })
    })())
  }
  const sendSeconds = (performance.now() - t0) / 1000
  await Promise.all(inflight)
  await sleep(r.settleMs)
  ws.terminate()

  const httpMs: number[] = []
  const frameMs: number[] = []
  let missing = 0
  for (const v of votes) {
    if (v.version === null) continue
    httpMs.push((v.doneUs - v.sentUs) / 1000)
    // Frames arrive in version order on one socket: the first at or above the vote's version.
    const hit = seen.get(v.logo)!.find(([version]) => version >= v.version!)
    if (hit) frameMs.push((hit[1] - v.sentUs) / 1000)
    else missing++
  }
  return { sent: count, ok: httpMs.length, bad: count - httpMs.length, statuses, httpMs, frameMs, missing, frames, sendSeconds }
}

serveLoad<VoteRun, VoteResult>(run)
