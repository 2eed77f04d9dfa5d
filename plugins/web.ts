import { stat } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { PROJECT_ROOT } from '../src/paths.js'

/** Where `npm run build` (vite) puts the demo page. */
export const WEB_DIR = join(PROJECT_ROOT, 'dist/web')

export interface WebOptions {
  /** The built page; dist/web by default. */
  root?: string
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Logo Gallery</title>
<body style="font-family:system-ui;max-width:40rem;margin:4rem auto;line-height:1.5">
<h1>The demo page is not built yet</h1>
<p>Run <code>npm run build</code> (or <code>npm start</code>, which builds when needed), then reload.
The API is live meanwhile: <a href="/logos">/logos</a>, <a href="/docs">/docs</a>.</p>`

/** A browser navigating (not fetch/XHR or an API client asking for JSON). */
const wantsPage = (request: FastifyRequest) => /\btext\/html\b/.test(request.headers.accept ?? '')

/**
 * The demo gallery page at `/`: files from dist/web, with `index.html` for any other page a
 * browser navigates to (SPA-friendly). A catch-all GET route, so it never shadows an API route
 * (those are more specific and win); anything that is neither a file nor a page navigation
 * gets the API's usual JSON 404. Hashed assets are cached for good, index.html never.
 */
export default fp<WebOptions>(async function webPlugin (fastify, opts) {
  const root = resolve(opts.root ?? WEB_DIR)
  await fastify.register(fastifyStatic, { root, serve: false, index: false, etag: true, lastModified: true })

  const sendIndex = async (reply: FastifyReply) => {
    if (!await isFile(join(root, 'index.html'))) return reply.code(503).type('text/html; charset=utf-8').send(NOT_BUILT)
    return reply.header('cache-control', 'no-cache').sendFile('index.html', root, { cacheControl: false })
  }

  fastify.get('/*', { schema: { hide: true } }, async (request, reply) => {
    const path = (request.params as { '*': string })['*']
    if (path === '' || path === 'index.html') return sendIndex(reply)
    // No dotfiles, no `..`: nothing outside the built page is ever served.
    if (path.split(/[/\\]/).some((segment) => segment.startsWith('.'))) return reply.callNotFound()
    const file = resolve(root, path)
    if (file.startsWith(root + sep) && await isFile(file)) {
      const hashed = path.startsWith('assets/')
      return reply.sendFile(path, root, hashed ? { immutable: true, maxAge: '1y' } : { maxAge: 0 })
    }
    // A page of the app (no extension), asked for by a browser: the app routes it.
    if (wantsPage(request) && !/\.[a-z0-9]+$/i.test(path)) return sendIndex(reply)
    return reply.callNotFound()
  })
}, { name: 'web', dependencies: ['@fastify/sensible'] })

async function isFile (path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile()
  } catch {
    return false
  }
}
