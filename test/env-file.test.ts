// .env.example works unchanged everywhere it is meant to be read: as Docker reads an env file
// (`docker run --env-file`, compose `env_file:`: everything after `=` is the value, no comment
// stripping, no quotes), as Node reads ./.env for `npm start` (util.parseEnv), on top of the
// Docker image's own ENV, and it lists every variable of the config schema with its default.
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseEnv } from 'node:util'
import t from 'tap'
import { EnvSchema, loadConfig } from '../src/config.js'
import { imageEnv } from './dockerfile.js'
import { JWT_SECRET, ROOT, freePort, tempDir, waitForHttp } from './helper.js'

const EXAMPLE = readFileSync(join(ROOT, '.env.example'), 'utf8')
const schemaVariables = Object.keys(EnvSchema.properties).sort()

/**
 * An env file the way the Docker CLI reads one (docker/cli opts/envfile.go): leading whitespace
 * trimmed; blank lines and lines starting with `#` skipped; NAME=VALUE split at the first `=`
 * with the value kept verbatim; a name with whitespace is an error; a bare NAME takes the host's
 * value (refused here: the example must not depend on the host).
 */
function parseDockerEnvFile (text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const [i, raw] of text.replace(/^\uFEFF/, '').split('\n').entries()) {
    const line = raw.replace(/^[ \t\n\v\f\r]+/, '')
    if (line === '' || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    if (eq === -1) throw new Error(`line ${i + 1}: ${JSON.stringify(raw)} has no '=' (Docker would copy the host's value)`)
    const name = line.slice(0, eq)
    if (/\s/.test(name)) throw new Error(`line ${i + 1}: variable ${JSON.stringify(name)} contains whitespace`)
    out.set(name, line.slice(eq + 1))
  }
  return out
}

/** `NAME=value` lines, set or commented out (`# NAME=value`). */
const listed = (text: string) => [...text.matchAll(/^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => ({ name: m[2], value: m[3], set: m[1] === undefined }))

t.test('Docker reads it as written: every value is clean, so Docker, compose and Node agree', async (t) => {
  const docker = parseDockerEnvFile(EXAMPLE)
  t.ok(docker.size > 20, `${docker.size} variables set`)
  for (const [name, value] of docker) {
    t.notMatch(value, /#|["'`$\\]|^\s|\s$/, `${name}: no comment, quote, $, backslash or surrounding space in ${JSON.stringify(value)}`)
  }
  t.same(parseEnv(EXAMPLE), Object.fromEntries(docker), 'Node (npm start with a .env) reads exactly what Docker reads')
})

t.test('it lists every variable of the config schema, and only those, each with its default', async (t) => {
  const entries = listed(EXAMPLE)
  const names = [...new Set(entries.map((e) => e.name))].sort()
  t.same(names, schemaVariables, 'the same variables as EnvSchema')
  for (const { name, value } of entries) {
    const def = (EnvSchema.properties[name as keyof typeof EnvSchema.properties] as { default?: unknown }).default
    if (def !== undefined) t.equal(value, String(def), `${name}=${value} is the default`)
  }
})

t.test('the config boots with it, alone and on top of the Docker image', async (t) => {
  const docker = Object.fromEntries(parseDockerEnvFile(EXAMPLE))
  const config = loadConfig(docker)
  t.equal(config.NODE_ENV, 'development')
  t.equal(config.redis, null)

  // compose: environment: > env_file > the image's ENV. The example must not undo the image.
  const image = imageEnv()
  t.same(Object.keys(image).filter((name) => name in docker), [], `it sets none of the image's own variables (${Object.keys(image).join(', ')})`)
  const inContainer = loadConfig({ ...image, ...docker, JWT_SECRET })
  t.equal(inContainer.NODE_ENV, 'production')
  t.equal(inContainer.HOST, '0.0.0.0', 'the container still listens on every interface')
  t.equal(inContainer.DATA_DIR, '/data')
  t.equal(inContainer.LOG_PRETTY, 'false')
})

t.test('npm start reads ./.env; the environment wins over it', async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  // The example as a .env, plus one setting to see and one the environment overrides.
  writeFileSync(join(dir, '.env'), `${EXAMPLE}\n# local\nRATE_LIMIT_MAX=7\nPORT=1\nJWT_SECRET=${JWT_SECRET}\n`)
  // As startServer does, from another working directory: tsx and its tsconfig named by path.
  const tsx = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href
  const child = spawn(process.execPath, ['--import', tsx, join(ROOT, 'src/server.ts')], {
    cwd: dir,
    env: { PATH: process.env.PATH, PORT: String(port), LOG_LEVEL: 'info', LOG_PRETTY: 'false', PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0', TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json') },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => { child.kill('SIGKILL'); await exited })
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000).catch((err: Error) => { throw new Error(`${err.message}\n${out}`) })
  t.pass('listening on the PORT from the environment, not the .env file')
  const res = await fetch(`http://127.0.0.1:${port}/logos`)
  t.equal(res.headers.get('x-ratelimit-limit'), '7', 'RATE_LIMIT_MAX from .env applies')
  t.match(out, /read settings from the \.env file/, 'and the log says the file was read')
})
