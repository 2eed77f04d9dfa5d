// SQLite adapter (embedded default): better-sqlite3, WAL, one file under DATA_DIR.
// better-sqlite3 is synchronous, so each method is one short transaction on the event loop;
// BEGIN IMMEDIATE takes the write lock up front, so a second process on the same file
// (a misconfiguration, but not a corrupting one) waits on busy_timeout instead of failing.
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { isVotingOpen, type CreateLogoInput, type DeadlineState, type Logo, type UpdateLogoInput } from '../domain.js'
import { newLogoId } from './ids.js'
import { NotFoundError, VotingClosedError, type Store, type VoteOutcome } from './types.js'

const migrations: string[] = [
  `CREATE TABLE logos (
     id TEXT PRIMARY KEY,
     title TEXT NOT NULL,
     image_url TEXT NOT NULL,
     description TEXT,
     author TEXT,
     total_votes INTEGER NOT NULL DEFAULT 0 CHECK (total_votes >= 0),
     version INTEGER NOT NULL DEFAULT 1,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE votes (
     logo_id TEXT NOT NULL REFERENCES logos(id) ON DELETE CASCADE,
     user_id TEXT NOT NULL,
     created_at TEXT NOT NULL,
     PRIMARY KEY (logo_id, user_id)
   );
   CREATE INDEX votes_user_idx ON votes(user_id);
   CREATE TABLE voting (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     deadline TEXT,
     version INTEGER NOT NULL DEFAULT 1
   );
   INSERT INTO voting (id, deadline, version) VALUES (1, NULL, 1);`
]

interface LogoRow {
  id: string
  title: string
  image_url: string
  description: string | null
  author: string | null
  total_votes: number
  version: number
  created_at: string
  updated_at: string
}

function toLogo (row: LogoRow): Logo {
  const logo: Logo = {
    _id: row.id,
    title: row.title,
    imageUrl: row.image_url,
    totalVotes: row.total_votes,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at
  }
  if (row.description !== null) logo.description = row.description
  if (row.author !== null) logo.author = row.author
  return logo
}

function migrate (db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)')
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version))
  migrations.forEach((sql, i) => {
    const version = i + 1
    if (applied.has(version)) return
    db.transaction(() => {
      db.exec(sql)
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, new Date().toISOString())
    }).immediate()
  })
}

export function createSqliteStore (file: string): Store {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true })
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('foreign_keys = ON')
  db.pragma('busy_timeout = 5000')
  migrate(db)

  const q = {
    list: db.prepare<[], LogoRow>('SELECT * FROM logos ORDER BY created_at, rowid'),
    get: db.prepare<[string], LogoRow>('SELECT * FROM logos WHERE id = ?'),
    count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM logos'),
    insert: db.prepare('INSERT INTO logos (id, title, image_url, description, author, total_votes, version, created_at, updated_at) VALUES (@id, @title, @image_url, @description, @author, 0, 1, @now, @now)'),
    del: db.prepare<[string], { version: number }>('DELETE FROM logos WHERE id = ? RETURNING version'),
    insertVote: db.prepare('INSERT INTO votes (logo_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
    deleteVote: db.prepare('DELETE FROM votes WHERE logo_id = ? AND user_id = ?'),
    bump: db.prepare<[number, string], { total_votes: number, version: number }>('UPDATE logos SET total_votes = total_votes + ?, version = version + 1 WHERE id = ? RETURNING total_votes, version'),
    counts: db.prepare<[string], { total_votes: number, version: number }>('SELECT total_votes, version FROM logos WHERE id = ?'),
    userVotes: db.prepare<[string], { logo_id: string }>('SELECT logo_id FROM votes WHERE user_id = ? ORDER BY created_at, logo_id'),
    deadline: db.prepare<[], { deadline: string | null, version: number }>('SELECT deadline, version FROM voting WHERE id = 1'),
    setDeadline: db.prepare<[string | null], { deadline: string | null, version: number }>('UPDATE voting SET deadline = ?, version = version + 1 WHERE id = 1 RETURNING deadline, version')
  }

  const vote = (logoId: string, userId: string, cast: boolean): VoteOutcome =>
    db.transaction((): VoteOutcome => {
      const current = q.counts.get(logoId)
      if (!current) throw new NotFoundError('Logo')
      const { deadline } = q.deadline.get()!
      if (!isVotingOpen(deadline)) throw new VotingClosedError(deadline!)
      const changed = cast
        ? q.insertVote.run(logoId, userId, new Date().toISOString()).changes === 1
        : q.deleteVote.run(logoId, userId).changes === 1
      const row = changed ? q.bump.get(cast ? 1 : -1, logoId)! : current
      return { logoId, totalVotes: row.total_votes, voted: cast, version: row.version, changed }
    }).immediate()

  return {
    kind: 'sqlite',
    async listLogos () { return q.list.all().map(toLogo) },
    async getLogo (id) {
      const row = q.get.get(id)
      return row ? toLogo(row) : null
    },
    async countLogos () { return q.count.get()!.n },
    async createLogo (input: CreateLogoInput) {
      const id = newLogoId()
      q.insert.run({ id, title: input.title, image_url: input.imageUrl, description: input.description ?? null, author: input.author ?? null, now: new Date().toISOString() })
      return toLogo(q.get.get(id)!)
    },
    async updateLogo (id, patch: UpdateLogoInput) {
      return db.transaction(() => {
        const sets: string[] = []
        const values: Record<string, unknown> = { id, now: new Date().toISOString() }
        const columns = { title: 'title', imageUrl: 'image_url', description: 'description', author: 'author' } as const
        for (const [field, column] of Object.entries(columns)) {
          const value = patch[field as keyof UpdateLogoInput]
          if (value === undefined) continue
          sets.push(`${column} = @${column}`)
          values[column] = value
        }
        const row = db.prepare<Record<string, unknown>, LogoRow>(`UPDATE logos SET ${sets.join(', ')}, version = version + 1, updated_at = @now WHERE id = @id RETURNING *`).get(values)
        return row ? toLogo(row) : null
      }).immediate()
    },
    async deleteLogo (id) {
      const row = q.del.get(id)
      return row ? { _id: id, version: row.version + 1 } : null
    },
    async castVote (logoId, userId) { return vote(logoId, userId, true) },
    async retractVote (logoId, userId) { return vote(logoId, userId, false) },
    async getVotes (logoId) {
      const row = q.counts.get(logoId)
      return row ? { logoId, totalVotes: row.total_votes, version: row.version } : null
    },
    async userVotes (userId) { return q.userVotes.all(userId).map((r) => r.logo_id) },
    async getDeadline (): Promise<DeadlineState> { return { ...q.deadline.get()! } },
    async setDeadline (deadline) { return { ...q.setDeadline.get(deadline === null ? null : new Date(deadline).toISOString())! } },
    async ping () { db.prepare('SELECT 1').get() },
    async close () { if (db.open) db.close() }
  }
}
