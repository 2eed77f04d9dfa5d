// The lightest test plumbing: paths, the test servers' addresses, tokens, free ports. Nothing
// here imports the app, so benchmark load processes (bench/) can use it without loading it all;
// test/helper.ts re-exports it.
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
export const JWT_SECRET = 'test-secret-test-secret-test-secret'

/** Signs a test token (with JWT_SECRET) without needing an app. */
export async function token (sub: string, role: 'user' | 'admin' = 'user', opts: { expiresIn?: number | string, secret?: string } = {}): Promise<string> {
  const { createSigner } = await import('fast-jwt')
  const sign = createSigner({ key: opts.secret ?? JWT_SECRET, algorithm: 'HS256', expiresIn: opts.expiresIn ?? 3_600_000 })
  return sign({ sub, role })
}

export const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` })

/** A free loopback port. */
export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}
