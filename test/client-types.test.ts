// The client package (packages/client) imports nothing a browser lacks and nothing from the
// server, read from its sources. (The packed package, installed the way users get it, is
// test/client-package.test.ts.)
import { existsSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'tap'
import { ROOT } from './helper.js'

const PACKAGE = join(ROOT, 'packages/client')

/** What a module imports at run time (type-only imports are erased), read from its source. */
function runtimeImportsOf (file: string): string[] {
  const source = readFileSync(file, 'utf8')
  return [...source.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm)].map((m) => m[1] ?? m[2])
}

test('the SDK imports nothing a browser lacks at run time (no Node built-ins, no server code, no schemas)', async (t) => {
  const seen = new Set<string>()
  const bare = new Set<string>()
  const walk = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const spec of runtimeImportsOf(file)) {
      if (!spec.startsWith('.')) {
        bare.add(spec)
        continue
      }
      const target = resolve(dirname(file), spec).replace(/\.js$/, '')
      const found = [`${target}.ts`, `${target}.tsx`].find((c) => existsSync(c))
      t.ok(found, `${relative(ROOT, file)} → ${spec} resolves`)
      if (found) walk(found)
    }
  }
  walk(join(PACKAGE, 'src/index.ts'))
  walk(join(PACKAGE, 'src/react/index.ts'))
  walk(join(PACKAGE, 'src/protocol.ts'))
  const files = [...seen].map((f) => relative(ROOT, f))
  t.ok(files.every((f) => f.startsWith('packages/client/src/')), `only the package's own files at run time: ${files.join(', ')}`)
  t.same([...bare].filter((b) => b.startsWith('node:') || builtinModules.includes(b)), [], 'no Node built-ins')
  t.same([...bare].filter((b) => !['react', 'react/jsx-runtime'].includes(b)), [], `bare imports: ${[...bare].join(', ')}`)
})
