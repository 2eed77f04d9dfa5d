// The seed document (docs/seed/realtime-sync.md, kept verbatim beside the design contract in
// docs/design.md): its usage examples are the client code the SDK is checked against.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './helper.js'

export const SEED_DOC = join(ROOT, 'docs/seed/realtime-sync.md')

/** The TypeScript blocks under the seed's "## Usage Examples" heading, exactly as written. */
export function seedExamples (): string[] {
  const text = readFileSync(SEED_DOC, 'utf8')
  const start = text.indexOf('\n## Usage Examples')
  const end = text.indexOf('\n## ', start + 1)
  if (start < 0 || end < 0) throw new Error(`${SEED_DOC}: no "## Usage Examples" section`)
  return [...text.slice(start, end).matchAll(/```typescript\n([\s\S]*?)```/g)].map((m) => m[1])
}

/**
 * The same code modulo formatting: whitespace, semicolons, quote style, trailing commas and
 * `export` (what the linter's autofix changes in test/fixtures/seed-examples.tsx).
 */
export const formatFree = (code: string): string => code
  .replace(/\bexport\s+/g, '')
  .replace(/"/g, "'")
  .replace(/;/g, '')
  .replace(/,(\s*[)}\]])/g, '$1')
  .replace(/\s+/g, '')
