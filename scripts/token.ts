// Prints a token signed with JWT_SECRET, for operators and for trying the API with curl:
//   JWT_SECRET=... npm run token -- --sub alice --role admin [--expires 1h]
// In the Docker image: node dist/scripts/token.js --sub alice --role admin
import { parseArgs } from 'node:util'
import { createSigner } from 'fast-jwt'
import { ConfigError, loadConfig } from '../src/config.js'
import { USER_ID_PATTERN } from '../src/domain.js'
import { roleClaims } from '../src/tokens.js'

const USAGE = 'usage: npm run token -- --sub <user id> [--role user|admin] [--expires 1h]'

function main (): number {
  let args
  try {
    args = parseArgs({ options: { sub: { type: 'string' }, role: { type: 'string', default: 'user' }, expires: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  if (args.help) { console.log(USAGE); return 0 }
  if (!args.sub || !new RegExp(USER_ID_PATTERN).test(args.sub)) { console.error(`--sub is required: 1-64 of A-Z a-z 0-9 _ @ + -\n${USAGE}`); return 2 }
  if (args.role !== 'user' && args.role !== 'admin') { console.error(`--role must be user or admin\n${USAGE}`); return 2 }
  let config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) { console.error(err.message); return 78 }
    throw err
  }
  if (!config.JWT_SECRET) { console.error('JWT_SECRET is not set: a token is only useful against a server that shares its secret'); return 78 }
  const expires = args.expires ?? config.JWT_EXPIRES_IN
  if (!/^\d+[smhd]?$/.test(expires)) { console.error('--expires must look like 3600, 90s, 30m, 12h or 7d'); return 2 }
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[expires.at(-1) as 's'] ?? 1_000
  const sign = createSigner({
    key: config.JWT_SECRET,
    algorithm: 'HS256',
    expiresIn: parseInt(expires, 10) * unit,
    ...(config.jwtIssuers.length > 0 ? { iss: config.jwtIssuers[0] } : {}),
    ...(config.jwtAudiences.length > 0 ? { aud: config.jwtAudiences[0] } : {})
  })
  console.log(sign({ sub: args.sub, ...roleClaims(config.JWT_ROLE_CLAIM, args.role) }))
  return 0
}

process.exitCode = main()
