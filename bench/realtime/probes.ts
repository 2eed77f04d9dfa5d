// The probe routes the two baseline servers (bare ws, Socket.IO) answer on their plain node:http
// server, as bench/realtime/app-server.ts does on ours: GET /_bench/health, GET /_bench/cpu
// ({ us }: CPU used so far, user + system) and GET /_bench/memory (two forced GCs with
// node --expose-gc, then process.memoryUsage()).
import type { IncomingMessage, ServerResponse } from 'node:http'

/** Answers a probe route; false when the request is not one (the server handles it). */
export function answerProbe (req: IncomingMessage, res: ServerResponse): boolean {
  if (req.url === '/_bench/health') { res.end('ok'); return true }
  if (req.url === '/_bench/cpu') { const u = process.cpuUsage(); res.end(JSON.stringify({ us: u.user + u.system })); return true }
  if (req.url === '/_bench/memory') {
    const gc = (globalThis as { gc?: () => void }).gc
    gc?.()
    gc?.()
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(process.memoryUsage()))
    return true
  }
  return false
}
