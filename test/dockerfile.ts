// The project's Dockerfile read with dockerfile-ast into stages of plain instructions, for the
// tests that check it without a Docker engine (test/docker-image.test.ts, test/env-file.test.ts).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DockerfileParser, type Copy, type Env, type From, type Instruction, type JSONInstruction, type ModifiableInstruction } from 'dockerfile-ast'
import { ROOT } from './helper.js'

export const DOCKERFILE = join(ROOT, 'Dockerfile')

export interface Step {
  keyword: string
  /** The arguments as written (line continuations joined). */
  args: string
  /** Each argument, flags left out (COPY --from=… is in `from`). */
  words: string[]
  /** Exec form (CMD, ENTRYPOINT, HEALTHCHECK CMD): the JSON array; null for the shell form. */
  exec: string[] | null
  /** COPY --from=<stage>. */
  from: string | null
  /** ENV: name → value. */
  env: Record<string, string>
  /** Options of a flag-taking instruction (HEALTHCHECK --interval=…). */
  flags: Record<string, string>
  line: number
}

export interface Stage {
  name: string | null
  image: string
  steps: Step[]
}

function jsonOf (instruction: Instruction): string[] | null {
  if (instruction.getKeyword() === 'HEALTHCHECK') {
    // The flags are parsed apart; what follows CMD is the exec form, or the shell form.
    const json = /(?:^|\s)CMD\s+(\[[\s\S]*\])\s*$/.exec(instruction.getArgumentsContent() ?? '')?.[1]
    return json ? JSON.parse(json) as string[] : null
  }
  const strings = (instruction as JSONInstruction).getJSONStrings?.()
  return strings && strings.length > 0 ? strings.map((s) => s.getJSONValue()) : null
}

export function readDockerfile (text = readFileSync(DOCKERFILE, 'utf8')): Stage[] {
  const stages: Stage[] = []
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    const keyword = instruction.getKeyword()
    if (keyword === 'FROM') {
      const from = instruction as From
      stages.push({ name: from.getBuildStage(), image: from.getImage() ?? '', steps: [] })
      continue
    }
    const flags = Object.fromEntries(((instruction as ModifiableInstruction).getFlags?.() ?? []).map((f) => [f.getName(), f.getValue() ?? '']))
    const env = keyword === 'ENV' ? Object.fromEntries((instruction as Env).getProperties().map((p) => [p.getName(), p.getUnescapedValue() ?? ''])) : {}
    stages.at(-1)!.steps.push({
      keyword,
      args: instruction.getArgumentsContent() ?? '',
      words: instruction.getArguments().map((a) => a.getValue()),
      exec: keyword === 'CMD' || keyword === 'ENTRYPOINT' || keyword === 'HEALTHCHECK' ? jsonOf(instruction) : null,
      from: keyword === 'COPY' ? (instruction as Copy).getFromFlag()?.getValue() ?? null : null,
      env,
      flags,
      line: instruction.getRange().start.line + 1
    })
  }
  return stages
}

/** The environment the final image sets (its ENV instructions, in order). */
export function imageEnv (stages = readDockerfile()): Record<string, string> {
  return Object.assign({}, ...stages.at(-1)!.steps.filter((s) => s.keyword === 'ENV').map((s) => s.env))
}
