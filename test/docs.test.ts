// The contract documents live in this repository (docs/design.md, docs/seed/), and the repository
// points at nothing outside itself.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from './helper.js'
import { formatFree, SEED_DOC, seedExamples } from './seed.js'

t.test('the design contract and the seed document are in docs/', async (t) => {
  t.ok(existsSync(join(ROOT, 'docs/design.md')), 'docs/design.md')
  t.ok(existsSync(SEED_DOC), 'docs/seed/realtime-sync.md')
  t.match(readFileSync(join(ROOT, 'docs/design.md'), 'utf8'), /^# logo-sync — product design and contracts/)
})

t.test('test/fixtures/seed-examples.tsx (typechecked against the sources) is the seed\'s examples, formatting aside', async (t) => {
  const fixture = readFileSync(join(ROOT, 'test/fixtures/seed-examples.tsx'), 'utf8')
  const code = fixture.slice(fixture.indexOf('function LogoCard'))
  const examples = seedExamples()
  t.equal(examples.length, 2, 'the seed has two usage examples: LogoCard and VotePage')
  t.equal(formatFree(code), formatFree(examples.join('\n')))
})

t.test('no tracked file points at documents outside the repository', async (t) => {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0')
    .filter((f) => f && /\.(ts|tsx|mjs|js|json|md|ya?ml|sh|conf|txt)$|^Dockerfile$|^\.env\.example$/.test(f) && f !== 'package-lock.json' && f !== 'test/docs.test.ts')
  const outside = /\.\.\/shared\b|shared\/DESIGN|\/work\/shared|shared\/seed/
  const found = files.filter((f) => existsSync(join(ROOT, f)) && outside.test(readFileSync(join(ROOT, f), 'utf8')))
  t.same(found, [], `files naming ../shared or shared/DESIGN: ${found.join(', ')}`)
})
