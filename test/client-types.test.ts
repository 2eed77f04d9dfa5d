// The client package (packages/client) as users get it: the seed's LogoCard/VotePage compile
// against `@logo-sync/client` and `@logo-sync/client/react` resolved through its package.json
// `exports` to emitted .d.ts files (not our tsconfig paths), a wrong use does not, and the SDK
// imports nothing a browser lacks.
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'tap'
import { ROOT, uniqueName } from './helper.js'

const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const PACKAGE = join(ROOT, 'packages/client')
/** The seed imports the server package's re-exports; a client-only app imports the client package. */
const toClientPackage = (source: string) => source.replace(/'logo-sync\/react'/g, "'@logo-sync/client/react'").replace(/'logo-sync\/client'/g, "'@logo-sync/client'")

function tsc (args: string[]) {
  const run = spawnSync(process.execPath, [TSC, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
  return { code: run.status, output: `${run.stdout}${run.stderr}` }
}

test('the seed examples compile against the published package types', async (t) => {
  // Under ROOT (git-ignored tmp/) so react, typebox and @types resolve from the project's node_modules.
  const dir = join(ROOT, 'tmp', uniqueName('types'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const pkg = join(dir, 'node_modules/@logo-sync/client')
  mkdirSync(pkg, { recursive: true })
  copyFileSync(join(PACKAGE, 'package.json'), join(pkg, 'package.json'))

  const emitted = tsc(['-p', join(PACKAGE, 'tsconfig.json'), '--emitDeclarationOnly', '--outDir', join(pkg, 'dist')])
  t.equal(emitted.code, 0, `declarations emitted\n${emitted.output}`)

  const consumer = (name: string, source: string) => {
    writeFileSync(join(dir, name), source)
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }))
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', jsx: 'react-jsx', strict: true, noEmit: true, skipLibCheck: true, lib: ['ES2023', 'DOM'] },
      files: [name]
    }))
    return tsc(['-p', join(dir, 'tsconfig.json')])
  }

  const seed = consumer('seed.tsx', toClientPackage(readFileSync(join(ROOT, 'test/fixtures/seed-examples.tsx'), 'utf8')))
  t.equal(seed.code, 0, `seed LogoCard and VotePage typecheck as written\n${seed.output}`)

  // A control: without initialData, data may be undefined, and reading it blindly must not compile.
  const wrong = consumer('wrong.tsx', `
import { useSync } from '@logo-sync/client/react'
import type { Logo } from '@logo-sync/client'
export function Card ({ id }: { id: string }) {
  const { data } = useSync<Logo>('logos', id)
  return <h2>{data.title}</h2>
}
`)
  t.not(wrong.code, 0, 'reading possibly-undefined data is a type error')
  t.match(wrong.output, /possibly 'undefined'/)

  const node = consumer('node.ts', `
import { LogoSyncClient, type Logo } from '@logo-sync/client'
import { WebSocket } from 'ws'
const client = new LogoSyncClient({ url: 'ws://localhost:3000/sync', WebSocket, getToken: async () => null })
const off = client.subscribe<Logo[]>('logos', (logos) => logos.map((l) => l.totalVotes))
off()
client.close()
`)
  t.equal(node.code, 0, `Node usage with ws typechecks\n${node.output}`)
})

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
