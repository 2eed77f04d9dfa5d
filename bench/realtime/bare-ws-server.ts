// The baseline of the real-time scenarios: a bare `ws` server sending pre-serialised buffers.
// Clients send `{"op":"subscribe","channel":"…"}` and get `{"type":"subscribed","channel":"…"}`;
// changes come over Redis (`<BENCH_PREFIX>bare`) as `<channel>\n<frame bytes>` and those bytes go
// to every socket on the channel as they are (serialised once, by the publisher). Heartbeat as
// ours does it: a ping every HEARTBEAT_MS, a peer that missed the previous one is terminated.
//   GET /_bench/health   200
//   GET /_bench/memory   two forced GCs (node --expose-gc), then process.memoryUsage()
//   GET /_bench/cpu      { us }: CPU used so far (user + system)
import { createServer } from 'node:http'
import { Redis } from 'ioredis'
import { WebSocketServer, type WebSocket } from 'ws'
import { answerProbe } from './probes.js'

const channels = new Map<string, Set<WebSocket>>()
const alive = new WeakSet<WebSocket>()

const server = createServer((req, res) => {
  if (answerProbe(req, res)) return
  res.statusCode = 404
  res.end()
})
const wss = new WebSocketServer({ server, path: '/sync', perMessageDeflate: false, maxPayload: 16 * 1024 })
wss.on('connection', (ws) => {
  alive.add(ws)
  const mine: string[] = []
  ws.on('pong', () => alive.add(ws))
  ws.on('message', (data) => {
    let frame: { op?: unknown, channel?: unknown }
    try { frame = JSON.parse(String(data)) } catch { return }
    if (frame.op !== 'subscribe' || typeof frame.channel !== 'string') return
    let set = channels.get(frame.channel)
    if (!set) channels.set(frame.channel, set = new Set())
    set.add(ws)
    mine.push(frame.channel)
    ws.send(JSON.stringify({ type: 'subscribed', channel: frame.channel }))
  })
  ws.on('close', () => {
    for (const name of mine) {
      const set = channels.get(name)
      set?.delete(ws)
      if (set?.size === 0) channels.delete(name)
    }
  })
})

const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 25_000)
setInterval(() => {
  for (const ws of wss.clients) {
    if (!alive.has(ws)) { ws.terminate(); continue }
    alive.delete(ws)
    ws.ping()
  }
}, heartbeatMs).unref()

const sub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
await sub.subscribe(`${process.env.BENCH_PREFIX ?? 'bench:'}bare`)
sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
  const nl = message.indexOf(10)
  const set = channels.get(message.toString('latin1', 0, nl))
  if (!set) return
  const frame = message.subarray(nl + 1)
  for (const ws of set) ws.send(frame, { binary: false })
})

server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => {
  sub.disconnect()
  for (const ws of wss.clients) ws.terminate()
  server.close(() => process.exit(0))
})
