// The layers of the tree, read from the sources' import statements (type-only imports count: a
// cycle of types is still two modules that cannot be understood apart):
// - no import cycle in src/ or in the SDK (packages/client/src);
// - nothing under src/ imports plugins/ or routes/, except src/app.ts, the composition root
//   that registers them (and src/server.ts, which only starts it).
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'
import { ROOT, tempDir } from './helper.js'

function sourcesUnder (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sourcesUnder(path)
    return /\.tsx?$/.test(name) && !name.endsWith('.d.ts') ? [path] : []
  })
}

/** Relative imports and re-exports of a file, resolved to the .ts/.tsx files they name. */
function localImportsOf (file: string): string[] {
  const source = readFileSync(file, 'utf8')
  const specifiers = [...source.matchAll(/^\s*(?:import|export)\s[^'";]*?from\s+'(\.[^']+)'|^\s*import\s+'(\.[^']+)'/gm)].map((m) => m[1] ?? m[2])
  return specifiers.map((s) => {
    const base = resolve(dirname(file), s).replace(/\.js$/, '')
    for (const candidate of [`${base}.ts`, `${base}.tsx`, join(base, 'index.ts')]) {
      try { if (statSync(candidate).isFile()) return candidate } catch {}
    }
    return resolve(dirname(file), s)
  })
}

/** Every cycle's files (strongly connected components with more than one file, or a self-import). */
function cycles (files: string[], root = ROOT): string[][] {
  const graph = new Map(files.map((f) => [f, localImportsOf(f).filter((g) => files.includes(g))]))
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string) => {
    index.set(v, counter); low.set(v, counter); counter++
    stack.push(v); onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)) } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do { w = stack.pop()!; onStack.delete(w); component.push(w) } while (w !== v)
      if (component.length > 1 || graph.get(v)!.includes(v)) found.push(component.map((f) => relative(root, f)).sort())
    }
  }
  for (const f of files) if (!index.has(f)) visit(f)
  return found
}

t.test('no import cycle in src/ or in the SDK', async (t) => {
  for (const dir of ['src', 'packages/client/src']) {
    const files = sourcesUnder(join(ROOT, dir))
    t.ok(files.length > 10, `${dir}: ${files.length} files read`)
    t.same(cycles(files), [], `${dir}: no cycle`)
  }
})

t.test('nothing under src/ imports plugins/ or routes/ but the composition root (src/app.ts)', async (t) => {
  const upward = sourcesUnder(join(ROOT, 'src'))
    .filter((f) => relative(ROOT, f) !== 'src/app.ts')
    .flatMap((f) => localImportsOf(f).filter((g) => /^(plugins|routes)\//.test(relative(ROOT, g))).map((g) => `${relative(ROOT, f)} -> ${relative(ROOT, g)}`))
  t.same(upward, [])
})

t.test('the checks can fail: a cycle and an upward import written to a scratch tree are found', async (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'src/sync'), { recursive: true })
  writeFileSync(join(dir, 'src/sync/a.ts'), "import { b } from './b.js'\nexport const a = () => b\n")
  writeFileSync(join(dir, 'src/sync/b.ts'), "import type { a } from './a.js'\nexport const b = 1 as unknown as typeof a\n")
  writeFileSync(join(dir, 'src/sync/c.ts'), "export { b } from './b.js'\n")
  t.same(cycles(sourcesUnder(join(dir, 'src')), dir), [['src/sync/a.ts', 'src/sync/b.ts']])
})
