import { UsageError, UserError, errorMessage } from '../errors.js';
import { LATEST_VERSION, MIGRATIONS } from './migrations.js';
import { parseDbUrl, type DbTarget } from './url.js';
import { incompleteLoadMessage, isIncompleteLoad } from './ingest-repo.js';
import { SqliteAdapter } from './dialects/sqlite.js';
import { PostgresAdapter, describePgError } from './dialects/postgres.js';
import type { DialectAdapter, SqlRunner } from './dialects/types.js';

export type { DialectAdapter, HeldLock, LockHolder, SqlRunner } from './dialects/types.js';

export interface Store {
  readonly db: DialectAdapter;
  readonly target: DbTarget;
  close(): Promise<void>;
}

export interface MigrateResult {
  from: number;
  to: number;
  applied: string[];
}

export interface OpenStoreOptions {
  /** Bring the schema up to date (default true). */
  migrate?: boolean;
  /**
   * Create a SQLite file that does not exist (default true: `migrate` and the loader). Commands
   * that only read or update existing data pass false, so a mistyped path is an error (exit 2)
   * instead of a new empty database. PostgreSQL databases are never created.
   */
  create?: boolean;
  /** PostgreSQL: connections in the pool (default 4), for callers that write from several tasks at once. */
  connections?: number;
}

async function openAdapter(target: DbTarget, opts: OpenStoreOptions): Promise<DialectAdapter> {
  if (target.dialect === 'sqlite') return SqliteAdapter.open(target.path, { create: opts.create });
  return PostgresAdapter.open(target.connectionString, target.display, opts.connections);
}

/** Open a database by URL and bring its schema up to date (every command migrates on open). */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const target = parseDbUrl(url);
  const db = await openAdapter(target, opts);
  const store: Store = { db, target, close: () => db.close() };
  if (opts.migrate !== false) {
    try {
      await migrate(store);
    } catch (err) {
      await db.close().catch(() => {});
      throw err;
    }
  }
  // A --fast load that never finished leaves events without their key and summaries half done:
  // no command may read or add to such a database.
  if (await isIncompleteLoad(db).catch(() => false)) {
    await db.close().catch(() => {});
    throw new UsageError(incompleteLoadMessage(target.display));
  }
  return store;
}

async function readVersion(tx: SqlRunner): Promise<number> {
  const rows = await tx.query<{ value: string }>("SELECT value FROM schema_state WHERE key = 'schema_version'");
  return rows.length ? Number(rows[0].value) : 0;
}

/** Apply pending migrations under the cross-process lock. A newer database is refused, never downgraded. */
export async function migrate(store: Store): Promise<MigrateResult> {
  const { db, target } = store;
  try {
    return await db.withMigrationLock(async (tx) => {
      await tx.run('CREATE TABLE IF NOT EXISTS schema_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
      const from = await readVersion(tx);
      if (from > LATEST_VERSION) {
        throw new UsageError(
          `database ${target.display} has schema version ${from}, newer than this program supports (${LATEST_VERSION}): upgrade cowrie-enrich`,
        );
      }
      const applied: string[] = [];
      for (const m of MIGRATIONS) {
        if (m.version <= from) continue;
        for (const stmt of m.up(db.types)) await tx.run(stmt);
        if (m.backfill) await m.backfill(db, tx);
        applied.push(`${m.version} ${m.name}`);
      }
      if (applied.length) {
        await tx.run(
          "INSERT INTO schema_state (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          [String(LATEST_VERSION)],
        );
      }
      return { from, to: Math.max(from, LATEST_VERSION), applied };
    });
  } catch (err) {
    if (err instanceof UserError) throw err;
    const msg = errorMessage(err);
    if (target.dialect === 'sqlite') {
      if (/readonly|read-only/i.test(msg)) throw new UsageError(`cannot write SQLite database ${target.path}: read-only`);
      if (/not a database|malformed/i.test(msg)) throw new UsageError(`${target.path} is not a usable SQLite database: ${msg}`);
      throw new UsageError(`cannot migrate ${target.display}: ${msg}`);
    }
    throw new UsageError(describePgError(err, target.display).replace('cannot use', 'cannot migrate'));
  }
}

export async function schemaVersion(store: Store): Promise<number> {
  try {
    return await readVersion(store.db);
  } catch {
    return 0;
  }
}
