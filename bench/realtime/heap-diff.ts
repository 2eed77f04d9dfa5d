// Dev tool (not a scenario): what grows per connection between two heap snapshots (from
// heap-probe.ts): self size and count per (node type, constructor name), divided by N.
//   npx tsx bench/realtime/heap-diff.ts /tmp/ours-0.heapsnapshot /tmp/ours-2000.heapsnapshot 2000
import { readFileSync } from 'node:fs'

interface Snapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[]] } }
  nodes: number[]
  strings: string[]
}

function aggregate (file: string): Map<string, { n: number, size: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot
  const fields = s.snapshot.meta.node_fields
  const types = s.snapshot.meta.node_types[0]
  const width = fields.length
  const iType = fields.indexOf('type')
  const iName = fields.indexOf('name')
  const iSize = fields.indexOf('self_size')
  const out = new Map<string, { n: number, size: number }>()
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]]
    let name = s.strings[s.nodes[i + iName]]
    if (type.endsWith('string')) name = '(string)'
    if (type === 'number' || type === 'heap number') name = '(number)'
    if (type === 'code') name = '(code)'
    const key = `${type} ${name.slice(0, 60)}`
    const e = out.get(key) ?? { n: 0, size: 0 }
    e.n++
    e.size += s.nodes[i + iSize]
    out.set(key, e)
  }
  return out
}

const [before, after, count] = [aggregate(process.argv[2]), aggregate(process.argv[3]), Number(process.argv[4] ?? 1)]
const rows = [...after].map(([key, e]) => {
  const o = before.get(key) ?? { n: 0, size: 0 }
  return { key, n: (e.n - o.n) / count, bytes: (e.size - o.size) / count }
}).sort((a, b) => b.bytes - a.bytes)
console.log(`bytes per connection: ${rows.reduce((s, r) => s + r.bytes, 0).toFixed(0)}`)
for (const r of rows.slice(0, 30)) console.log(`${r.bytes.toFixed(1).padStart(8)} ${r.n.toFixed(2).padStart(6)}  ${r.key}`)
