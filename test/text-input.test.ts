// Text no store can hold, and image URLs that are not URLs: a 400 from validation on every store
// alike, before anything reaches SQLite or PostgreSQL (PostgreSQL refuses NUL with a 500-shaped
// "invalid byte sequence", SQLite keeps it; lone surrogates come back as U+FFFD from both).
import t from 'tap'
import { PG_URL, bearer, build, pgSchema, token } from './helper.js'

const stores = {
  sqlite: async () => ({}),
  postgres: async (tt: Parameters<typeof pgSchema>[0]) => ({ DATABASE_URL: PG_URL, DATABASE_SCHEMA: await pgSchema(tt) })
}

const hostileText: [string, string][] = [
  ['NUL', 'a\u0000b'],
  ['a C0 control', 'bell\u0007'],
  ['escape', 'x\u001b[31mred'],
  ['DEL', 'x\u007f'],
  ['a C1 control', 'x\u0085y'],
  ['a lone high surrogate', 'x\ud800y'],
  ['a lone low surrogate', 'x\udc00']
]

const badUrls: [string, string][] = [
  ['NUL', 'https://x.test/\u0000.png'],
  ['a space', 'https://x.test/a b.png'],
  ['a double quote', 'https://x.test/a".png'],
  ['a single quote', "https://x.test/a'.png"],
  ['an angle bracket', 'https://x.test/<script>'],
  ['a newline', 'https://x.test/a\n.png'],
  ['a tab', 'https://x.test/\ta.png'],
  ['a backslash', 'https://x.test\\evil.test/a.png'],
  ['no host', 'https:///a.png'],
  ['a lone surrogate', 'https://x.test/\ud83d.png'],
  ['a bidi override', 'https://x.test/\u202egnp.exe']
]

for (const [store, env] of Object.entries(stores)) {
  t.test(`${store}: control characters and bad URLs are a 400 on create and edit, and change nothing`, async (t) => {
    const app = await build(t, await env(t))
    const admin = await token('root', 'admin')
    const ok = { title: 'Fine', imageUrl: 'https://x.test/a.png', description: 'Line one\nline two\ttabbed\r\n', author: 'Zoë 👩‍🎨' }
    const created = await app.inject({ method: 'POST', url: '/logos', headers: bearer(admin), payload: ok })
    t.equal(created.statusCode, 201, 'tabs and newlines in a description, a ZWJ emoji in an author are fine')
    const logo = created.json()
    t.match(logo, ok, 'and stored as sent')
    const snapshot = async () => (await app.inject('/logos')).json()
    const before = await snapshot()

    const send = (method: 'POST' | 'PATCH', url: string, payload: object) => app.inject({ method, url, headers: bearer(admin), payload })
    for (const field of ['title', 'description', 'author', 'imageUrl'] as const) {
      const values = field === 'imageUrl' ? badUrls : hostileText
      for (const [what, value] of values) {
        for (const [label, res] of [
          ['create', await send('POST', '/logos', { ...ok, [field]: value })],
          ['edit', await send('PATCH', `/logos/${logo._id}`, { [field]: value })],
          ['edit of a logo that does not exist', await send('PATCH', '/logos/doesnotexist', { [field]: value })]
        ] as const) {
          t.equal(res.statusCode, 400, `${field} with ${what}: ${label} is a 400`)
          const body = res.json() as { code: string, message: string }
          t.equal(body.code, 'bad_request')
          t.match(body.message, new RegExp(`^body\\.${field} `), `${field} with ${what}: the field is named`)
          t.notMatch(body.message, /pattern|\\p\{/, 'in words, not a regular expression')
        }
      }
    }
    t.same(await snapshot(), before, 'nothing stored changed')
  })
}
