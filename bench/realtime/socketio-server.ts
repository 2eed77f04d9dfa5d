// The peer users would pick instead: Socket.IO 4 with @socket.io/redis-adapter, websocket
// transport only (as a fair configuration for long-lived subscribers; no HTTP long-polling).
// A client emits `subscribe` with a room name and is answered `subscribed`; changes come from
// another Socket.IO server on the same adapter (`io.to(room).emit('frame', …)`, see
// bench/realtime/common.ts Publisher). Heartbeat: Socket.IO's own (pingInterval 25 s default).
//   GET /_bench/health   200
//   GET /_bench/memory   two forced GCs (node --expose-gc), then process.memoryUsage()
//   GET /_bench/cpu      { us }: CPU used so far (user + system)
import { createServer } from 'node:http'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { Server } from 'socket.io'
import { answerProbe } from './probes.js'

const server = createServer((req, res) => {
  if (answerProbe(req, res)) return
  // Everything else under /socket.io/ is Socket.IO's (it registers its own listener first).
  if (!req.url?.startsWith('/socket.io/')) { res.statusCode = 404; res.end() }
})
const pub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
const sub = pub.duplicate()
const io = new Server(server, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 16 * 1024,
  pingInterval: Number(process.env.HEARTBEAT_MS ?? 25_000)
})
io.adapter(createAdapter(pub, sub, { key: `${process.env.BENCH_PREFIX ?? 'bench:'}socket.io` }))
io.on('connection', (socket) => {
  socket.on('subscribe', (room: unknown) => {
    if (typeof room !== 'string') return
    void socket.join(room)
    socket.emit('subscribed', room)
  })
})

server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => {
  void io.close(() => {
    pub.disconnect()
    sub.disconnect()
    process.exit(0)
  })
})
