// What the client needs from where it runs: a WebSocket, the page's URL, its online and
// visibility events. Browsers have them all; Node passes `ws` and has no page.
import type { WebSocketConstructor } from './types.js'

const NO_WEBSOCKET = "LogoSyncClient needs a WebSocket implementation: in Node pass { WebSocket } from 'ws'"

export const globalWebSocket = () => (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket

/** Throws when constructed: the default when there is no WebSocket, so the error says what to do. */
export const missingWebSocket = class {
  constructor () { throw new TypeError(NO_WEBSOCKET) }
} as unknown as WebSocketConstructor

export const noWebSocket = () => new TypeError(NO_WEBSOCKET)

/** Whether a page is there and hidden (a background tab): polling waits for it to come back. */
export const pageHidden = () => (globalThis as { document?: { visibilityState?: string } }).document?.visibilityState === 'hidden'

/** `http(s)://…` becomes `ws(s)://…`; relative URLs resolve against the page in a browser. */
export function toWebSocketUrl (url: string): string {
  const base = (globalThis as { location?: { href: string } }).location?.href
  const u = new URL(url, base)
  if (u.protocol === 'http:') u.protocol = 'ws:'
  else if (u.protocol === 'https:') u.protocol = 'wss:'
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`Not a WebSocket URL: ${url}`)
  return u.toString()
}

/** The REST API at the same origin as the socket, over http(s). */
export function defaultApiUrl (wsUrl: string): string {
  const u = new URL(wsUrl)
  return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`
}

/** In a browser: reconnect at once when the network comes back or the tab returns to the front. */
export function watchBrowser (wake: () => void): () => void {
  const w = globalThis as { addEventListener?: (t: string, l: () => void) => void, removeEventListener?: (t: string, l: () => void) => void, document?: { visibilityState?: string } }
  if (typeof w.addEventListener !== 'function' || !w.document) return () => {}
  const onVisible = () => { if (w.document?.visibilityState === 'visible') wake() }
  w.addEventListener('online', wake)
  w.addEventListener('visibilitychange', onVisible)
  return () => {
    w.removeEventListener?.('online', wake)
    w.removeEventListener?.('visibilitychange', onVisible)
  }
}
