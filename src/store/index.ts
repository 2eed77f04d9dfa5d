import { join } from 'node:path'
import type { Config } from '../config.js'
import { createPostgresStore } from './postgres.js'
import { createSqliteStore } from './sqlite.js'
import type { Store } from './types.js'

export * from './types.js'

/** The store the configuration asks for: PostgreSQL when DATABASE_URL is set, else SQLite under DATA_DIR. */
export async function createStore (config: Pick<Config, 'DATABASE_URL' | 'DATABASE_SCHEMA' | 'DATABASE_POOL_MAX' | 'DATABASE_CONNECT_TIMEOUT_MS' | 'DATABASE_QUERY_TIMEOUT_MS' | 'DATA_DIR'>): Promise<Store> {
  if (config.DATABASE_URL) {
    return createPostgresStore({ connectionString: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, max: config.DATABASE_POOL_MAX, connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS, queryTimeoutMs: config.DATABASE_QUERY_TIMEOUT_MS })
  }
  return createSqliteStore(join(config.DATA_DIR, 'logo-sync.db'))
}
