// plugins/web.ts: the demo page at `/` from dist/web, SPA-friendly, never in the way of the API.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import sensible from '@fastify/sensible'
import Fastify from 'fastify'
import { test } from 'tap'
import webPlugin from '../plugins/web.js'
import { build, tempDir, type TestLike } from './helper.js'

async function pageApp (t: TestLike, files: Record<string, string>) {
  const root = tempDir(t)
  for (const [path, body] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true })
    writeFileSync(join(root, path), body)
  }
  const app = Fastify()
  await app.register(sensible)
  await app.register(webPlugin, { root })
  app.get('/logos', async () => ({ items: [] }))
  t.teardown(() => app.close())
  return app
}

const html = { accept: 'text/html,application/xhtml+xml' }

test('serves the built page and its assets with the right caching', async (t) => {
  const app = await pageApp(t, { 'index.html': '<!doctype html><title>page</title>', 'assets/index-abc123.js': 'console.log(1)', 'robots.txt': 'User-agent: *' })
  const index = await app.inject('/')
  t.equal(index.statusCode, 200)
  t.match(index.headers['content-type'], /text\/html/)
  t.equal(index.headers['cache-control'], 'no-cache', 'index.html is always revalidated')
  t.match(index.body, /<title>page/)
  const asset = await app.inject('/assets/index-abc123.js')
  t.equal(asset.statusCode, 200)
  t.match(asset.headers['content-type'], /javascript/)
  t.match(asset.headers['cache-control'], /immutable/, 'hashed assets are cached for good')
  t.equal((await app.inject('/robots.txt')).body, 'User-agent: *')
  t.equal((await app.inject({ method: 'HEAD', url: '/' })).statusCode, 200)
})

test('SPA-friendly: a browser navigating to any page gets index.html; everything else a 404', async (t) => {
  const app = await pageApp(t, { 'index.html': '<!doctype html><title>page</title>' })
  const page = await app.inject({ url: '/gallery/some-logo', headers: html })
  t.equal(page.statusCode, 200)
  t.match(page.body, /<title>page/)
  t.equal((await app.inject({ url: '/gallery/some-logo', headers: { accept: 'application/json' } })).statusCode, 404, 'an API client gets a 404')
  t.equal((await app.inject({ url: '/missing.js', headers: html })).statusCode, 404, 'a missing file is a 404, not the page')
  t.equal((await app.inject({ url: '/..%2f..%2fetc%2fpasswd', headers: html })).statusCode, 404, 'no way out of the root')
  t.equal((await app.inject({ url: '/.env' })).statusCode, 404, 'no dotfiles')
  t.same((await app.inject('/logos')).json(), { items: [] }, 'API routes win')
})

test('before the page is built, `/` says how to build it', async (t) => {
  const app = await pageApp(t, {})
  const res = await app.inject('/')
  t.equal(res.statusCode, 503)
  t.match(res.body, /npm run build/)
})

test('in the real app the page sits behind every API route', async (t) => {
  const app = await build(t)
  const list = await app.inject('/logos')
  t.equal(list.statusCode, 200)
  t.match(list.headers['content-type'], /application\/json/)
  t.equal((await app.inject('/healthz')).json().status, 'ok')
  const unknown = await app.inject({ url: '/logoz', headers: { accept: 'application/json' } })
  t.equal(unknown.statusCode, 404)
  t.match(unknown.json(), { statusCode: 404, code: 'not_found' }, 'unknown API paths keep the JSON 404')
  t.equal((await app.inject({ method: 'POST', url: '/', payload: {} })).statusCode, 404, 'only GET/HEAD are served')
  const root = await app.inject({ url: '/', headers: html })
  t.ok([200, 503].includes(root.statusCode), 'the page, or how to build it')
  t.match(root.headers['content-type'], /text\/html/)
})
