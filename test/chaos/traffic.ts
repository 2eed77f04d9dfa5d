// Live traffic for the chaos runner: users on the SDK (@logo-sync/client) through nginx, each
// subscribed to the gallery, its own votes and one logo's count, voting and retracting. Each user
// has one request out at a time and repeats an operation until it is answered 200 (votes and
// retractions are idempotent), so the last answered operation on a (user, logo) pair is what
// the store must hold at the end. A ledger keeps, per pair, that last acknowledged state and
// whether an attempt that may still land late (a request cut off without an answer) preceded it.
import { WebSocket } from 'ws'
import { LogoSyncClient, type Logo, type SyncError } from '@logo-sync/client'
import { token } from '../helper.js'
import { seededRandom } from './schedule.js'

export interface PairState {
  /** The last operation answered 200: true cast, false retracted; undefined: none answered. */
  acked?: boolean
  /**
   * Operations attempted on this pair that got no answer that rules out a commit (network error,
   * 502/503/504, timeout). Such an attempt may still land later (a request held by a frozen
   * replica), so a pair where one differs from the last acknowledged state is unsure.
   */
  unanswered: Set<boolean>
}

/** Whether an unanswered attempt could have overridden (or be all there is to) the pair's state. */
export const isUnsure = (p: PairState) => p.acked === undefined ? p.unanswered.size > 0 : p.unanswered.has(!p.acked)

export interface User {
  sub: string
  client: LogoSyncClient
  /** The logo whose count channel (`logos.<id>.votes`) this user holds. */
  countChannel: string
}

export interface TrafficStats {
  acked: number
  attempts: number
  /** Answers that rule out a commit (429: refused before the route; see refusedWithoutEffect). */
  refused: number
  /** Attempts whose fate is unknown (no answer, or an answer that does not rule out a commit). */
  unknown: number
  /** 5xx answers other than 502/503/504, and 4xx other than 429: never expected. */
  unexpected: string[]
  /** acked timestamps, to find the first acknowledged vote after each fault. */
  ackTimes: number[]
  sdkErrors: number
  /** Failed attempts by HTTP status ('network': no answer), and when (ms since start) each happened. */
  failures: Record<string, number>
  failureLog: [number, string][]
}

export interface Traffic {
  users: User[]
  ledger: Map<string, PairState>
  stats: TrafficStats
  /** Asks every user loop to stop after its current operation, and waits for them (bounded). */
  stop: (timeoutMs: number) => Promise<void>
  /** Adds `count` raw WebSocket clients that subscribe to every channel and never read again. */
  addStalled: (count: number) => Promise<void>
  stalled: { opened: number, closedBy: Record<string, number>, errors: string[] }
  close: () => void
}

export const pairKey = (sub: string, logoId: string) => `${sub}\u0000${logoId}`

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Answers that rule out a commit: 429 (refused before the route). A 503 does not: a connection
 * lost while its COMMIT was on the wire may have committed.
 */
const refusedWithoutEffect = (err: SyncError) => err.status === 429

export interface TrafficOptions {
  seed: number
  users: number
  logoIds: string[]
  nginx: { http: string, ws: string }
  /** Think time between a user's operations, in ms (seeded within the range). */
  thinkMs: [number, number]
}

export async function startTraffic (opts: TrafficOptions): Promise<Traffic> {
  const random = seededRandom(opts.seed ^ 0x5eed)
  const ledger = new Map<string, PairState>()
  const stats: TrafficStats = { acked: 0, attempts: 0, refused: 0, unknown: 0, unexpected: [], ackTimes: [], sdkErrors: 0, failures: {}, failureLog: [] }
  const run = { stopping: false }
  const sockets: WebSocket[] = []
  const stalled = { opened: 0, closedBy: {} as Record<string, number>, errors: [] as string[] }

  const users: User[] = []
  for (let i = 0; i < opts.users; i++) {
    const sub = `chaos-user-${i}`
    const tok = await token(sub, 'user', { expiresIn: 6 * 3_600_000 })
    const client = new LogoSyncClient({
      url: opts.nginx.ws,
      apiUrl: opts.nginx.http,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      getToken: async () => tok,
      // Bounded requests: a request stuck on a frozen replica comes back (as unknown) at the latest here.
      fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(20_000) }),
      reconnect: { minDelayMs: 50, baseDelayMs: 200, maxDelayMs: 2000, spreadMinDelayMs: 100, spreadMaxDelayMs: 1000 },
      connectTimeoutMs: 5000
    })
    client.on('error', () => { stats.sdkErrors++ })
    const countChannel = `logos.${random.pick(opts.logoIds)}.votes`
    client.subscribe('logos', () => {})
    client.subscribe(`users.${sub}.votes`, () => {})
    client.subscribe(countChannel, () => {})
    client.connect()
    users.push({ sub, client, countChannel })
  }

  /** One operation, repeated until answered 200 or the run stops; recorded in the ledger. */
  async function perform (user: User, logoId: string, cast: boolean): Promise<void> {
    const key = pairKey(user.sub, logoId)
    const pair = ledger.get(key) ?? { unanswered: new Set<boolean>() }
    ledger.set(key, pair)
    for (let attempt = 0; ; attempt++) {
      stats.attempts++
      try {
        await (cast ? user.client.vote(logoId) : user.client.unvote(logoId))
        stats.acked++
        stats.ackTimes.push(Date.now())
        pair.acked = cast
        return
      } catch (err) {
        const e = err as SyncError
        const status = e.status === undefined ? 'network' : `${e.status}${e.serverCode ? ` ${e.serverCode}` : ''}`
        stats.failures[status] = (stats.failures[status] ?? 0) + 1
        stats.failureLog.push([Date.now(), status])
        if (refusedWithoutEffect(e)) {
          stats.refused++
        } else {
          stats.unknown++
          pair.unanswered.add(cast)
          if (e.status !== undefined && ![502, 503, 504].includes(e.status)) stats.unexpected.push(`${cast ? 'POST' : 'DELETE'} /logos/${logoId}/votes as ${user.sub}: ${e.status} ${e.serverCode ?? ''} ${e.message}`)
        }
        if (run.stopping) return // the quiet period re-asserts what is left unsure
        await sleep(Math.min(2000, 50 * 2 ** Math.min(attempt, 6)))
      }
    }
  }

  const loops = users.map(async (user, i) => {
    const mine = seededRandom(opts.seed * 31 + i)
    await sleep(mine.int(0, 500))
    while (!run.stopping) {
      await perform(user, mine.pick(opts.logoIds), mine.int(0, 2) > 0) // two casts for one retraction
      await sleep(mine.int(opts.thinkMs[0], opts.thinkMs[1]))
    }
  })

  return {
    users,
    ledger,
    stats,
    stalled,
    async stop (timeoutMs) {
      run.stopping = true
      await Promise.race([Promise.all(loops), sleep(timeoutMs)])
    },
    async addStalled (count) {
      for (let i = 0; i < count; i++) {
        const ws = new WebSocket(opts.nginx.ws)
        sockets.push(ws)
        ws.on('error', (err) => { stalled.errors.push(err.message) })
        ws.on('close', (code) => { stalled.closedBy[code] = (stalled.closedBy[code] ?? 0) + 1 })
        await new Promise<void>((resolve) => {
          ws.once('open', () => resolve())
          ws.once('close', () => resolve())
        })
        if (ws.readyState !== WebSocket.OPEN) continue
        stalled.opened++
        ws.send(JSON.stringify({ op: 'subscribe', channel: 'logos' }))
        for (const id of opts.logoIds) {
          ws.send(JSON.stringify({ op: 'subscribe', channel: `logos.${id}` }))
          ws.send(JSON.stringify({ op: 'subscribe', channel: `logos.${id}.votes` }))
        }
        ws.pause() // never reads again
      }
    },
    close () {
      for (const u of users) u.client.close()
      for (const ws of sockets) ws.terminate()
    }
  }
}

export type { Logo }
