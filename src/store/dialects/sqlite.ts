import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { UsageError, errorMessage } from '../../errors.js';
import type { ColumnTypes, Migration } from '../migrations.js';
import { Mutex } from '../mutex.js';
import type { Database as Schema } from '../schema.js';
import type { BulkInsert, BulkUpsert, DialectAdapter, LockAttempt, LockHolder, NewRowsInsert, SqlRunner } from './types.js';

/** Page size of a new database: fewer, fuller pages for ~1 KB events (measured: 4 KiB → 8 KiB pays, 16/64 KiB do not). */
const NEW_DATABASE_PAGE_SIZE = 8192;

const TYPES: ColumnTypes = {
  // Not AUTOINCREMENT: that keeps sqlite_sequence up to date on every insert (a second B-tree write
  // per event). Nothing deletes rows or reads ids, so plain rowids are never reused. Databases
  // created before keep AUTOINCREMENT (changing it needs a table rebuild); both load alike.
  id: 'INTEGER PRIMARY KEY',
  json: 'TEXT',
  ts: 'TEXT',
  bool: 'INTEGER',
  bigint: 'INTEGER',
  real: 'REAL',
  falseValue: '0',
};

/** raw_events' identity as migration 1 wrote it, with the comment lines before it. */
const EVENT_IDENTITY_CONSTRAINT = /,(\s*--[^\n]*\n)*\s*CONSTRAINT raw_events_identity UNIQUE \(event_timestamp, payload_hash\)/;

function bindable(params: readonly unknown[]): unknown[] {
  for (const p of params) {
    // The hot path (event rows) has neither: bind the row as it is.
    if (typeof p === 'boolean' || p === undefined) return params.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v === undefined ? null : v));
  }
  return params as unknown[];
}

/** Attack logs are not for every local user: a new database is 0640 whatever the umask (SQLite gives its -wal/-shm files the same mode). */
function createPrivateFile(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o640);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  try {
    fs.fchmodSync(fd, 0o640);
  } finally {
    fs.closeSync(fd);
  }
}

/** The holder a lock file's companion names, if it can be read. */
function readHolder(file: string): LockHolder | null {
  try {
    const h = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockHolder>;
    return typeof h.host === 'string' && typeof h.pid === 'number' && typeof h.startedAt === 'string' ? { host: h.host, pid: h.pid, startedAt: h.startedAt } : null;
  } catch {
    return null;
  }
}

export class SqliteAdapter implements DialectAdapter {
  readonly name = 'sqlite' as const;
  readonly types = TYPES;
  /** One connection: files load one after another. */
  readonly writeConnections = 1;
  readonly kysely: Kysely<Schema>;
  readonly raw: Database.Database;
  readonly file: string;
  #mutex = new Mutex();
  #statements = new Map<string, Database.Statement>();

  private constructor(file: string, raw: Database.Database) {
    this.file = file;
    this.raw = raw;
    this.kysely = new Kysely<Schema>({ dialect: new SqliteDialect({ database: raw }) });
  }

  /** `create: false` (cowrie-db info/check, cowrie-enrich refresh): a missing file is an error, not a new empty database. */
  static open(file: string, opts: { create?: boolean } = {}): SqliteAdapter {
    const dir = path.dirname(file);
    if (!fs.existsSync(dir)) throw new UsageError(`cannot open SQLite database ${file}: folder ${dir} does not exist`);
    if (opts.create === false && !fs.existsSync(file)) {
      throw new UsageError(`SQLite database ${file} does not exist (cowrie-db migrate or cowrie-loader creates it)`);
    }
    // Every command migrates on open, and WAL needs its -wal/-shm files beside the database:
    // say "read-only" up front rather than let SQLite report a vaguer open error.
    const writable = (p: string) => { try { fs.accessSync(p, fs.constants.W_OK); return true; } catch { return false; } };
    if (fs.existsSync(file) ? !writable(file) || !writable(dir) : !writable(dir)) {
      throw new UsageError(`cannot write SQLite database ${file}: read-only file or folder`);
    }
    let raw: Database.Database;
    try {
      createPrivateFile(file);
      raw = new Database(file, { timeout: 15_000 });
      // Only takes effect before the first table exists (a new file); WAL fixes it after that.
      if ((raw.pragma('page_count', { simple: true }) as number) === 0) raw.pragma(`page_size = ${NEW_DATABASE_PAGE_SIZE}`);
      raw.pragma('journal_mode = WAL');
      raw.pragma('synchronous = NORMAL');
      raw.pragma('foreign_keys = OFF');
      raw.pragma('temp_store = MEMORY');
      raw.pragma('cache_size = -65536');
    } catch (err) {
      throw new UsageError(`cannot open SQLite database ${file}: ${errorMessage(err)}`);
    }
    return new SqliteAdapter(file, raw);
  }

  /** Apply migrations to a scratch in-memory database and list each table's columns (for schema-drift checks). */
  static scratchColumns(migrations: Migration[], tables: string[]): Map<string, Set<string>> {
    const mem = new Database(':memory:');
    try {
      mem.exec('CREATE TABLE schema_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
      for (const m of migrations) for (const stmt of m.up(TYPES)) mem.exec(stmt);
      const out = new Map<string, Set<string>>();
      for (const t of tables) {
        const cols = mem.prepare(`PRAGMA table_info(${t})`).all() as Array<{ name: string }>;
        out.set(t, new Set(cols.map((c) => c.name)));
      }
      return out;
    } finally {
      mem.close();
    }
  }

  prepare(sql: string): Database.Statement {
    let st = this.#statements.get(sql);
    if (!st) {
      st = this.raw.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  #runner: SqlRunner = {
    query: async <R>(sql: string, params: readonly unknown[] = []) => {
      const st = this.prepare(sql);
      if (st.reader) return st.all(...bindable(params)) as R[];
      st.run(...bindable(params));
      return [] as R[];
    },
    run: async (sql: string, params: readonly unknown[] = []) => this.prepare(sql).run(...bindable(params)).changes,
  };

  async query<R = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    const release = await this.#mutex.lock();
    try {
      return await this.#runner.query<R>(sql, params);
    } finally {
      release();
    }
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<number> {
    const release = await this.#mutex.lock();
    try {
      return await this.#runner.run(sql, params);
    } finally {
      release();
    }
  }

  /**
   * One transaction. Every write transaction takes the write lock up front (BEGIN IMMEDIATE), so
   * waiting for another process goes through the busy timeout; a deferred transaction that reads
   * and then writes would instead fail at once with "database is locked" when another process
   * wrote in between (its read snapshot cannot be upgraded).
   */
  /** SQLite never retries a transaction (the busy timeout waits instead): the same as transaction(). */
  transactionNoRetry<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.transaction(fn);
  }

  async transaction<T>(fn: (tx: SqlRunner) => Promise<T>, begin = 'BEGIN IMMEDIATE'): Promise<T> {
    const release = await this.#mutex.lock();
    try {
      this.raw.exec(begin);
      try {
        const out = await fn(this.#runner);
        this.raw.exec('COMMIT');
        return out;
      } catch (err) {
        if (this.raw.inTransaction) this.raw.exec('ROLLBACK');
        throw err;
      }
    } finally {
      release();
    }
  }

  /** Run synchronous work in one transaction: the measured hot path for bulk writes. */
  async transactionSync<T>(fn: (db: Database.Database) => T): Promise<T> {
    const release = await this.#mutex.lock();
    try {
      // .immediate(): the write lock up front, as in transaction().
      return this.raw.transaction(() => fn(this.raw)).immediate();
    } finally {
      release();
    }
  }

  async insertMany(_tx: SqlRunner, spec: BulkInsert, rows: unknown[][]): Promise<unknown[]> {
    const cols = spec.columns.map((c) => c[0]);
    const sql = `INSERT INTO ${spec.table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')}) ${spec.conflict}${spec.returning ? ` RETURNING ${spec.returning}` : ''}`;
    const st = this.prepare(sql);
    const out: unknown[] = [];
    if (spec.returning) {
      for (const r of rows) {
        const got = st.get(...bindable(r)) as Record<string, unknown> | undefined;
        if (got) out.push(got[spec.returning]);
      }
    } else {
      for (const r of rows) st.run(...bindable(r));
    }
    return out;
  }

  async insertNew(_tx: SqlRunner, spec: NewRowsInsert, rows: unknown[][]): Promise<Uint8Array> {
    const out = new Uint8Array(rows.length);
    if (!rows.length) return out;
    const cols = [...spec.columns.map((c) => c[0]), ...spec.constants.map((c) => c[0])];
    // .run() and its change count: no RETURNING row to build and read back per event.
    const conflict = spec.conflictKey === null ? '' : ` ON CONFLICT (${spec.conflictKey}) DO NOTHING`;
    const st = this.prepare(`INSERT INTO ${spec.table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})${conflict}`);
    const constants = bindable(spec.constants.map((c) => c[2]));
    const width = spec.columns.length;
    const args = new Array<unknown>(cols.length);
    for (let k = 0; k < constants.length; k++) args[width + k] = constants[k];
    for (let i = 0; i < rows.length; i++) {
      const r = bindable(rows[i]);
      for (let k = 0; k < width; k++) args[k] = r[k];
      out[i] = st.run(args).changes;
    }
    return out;
  }

  async upsertCountNew(_tx: SqlRunner, spec: BulkUpsert, rows: unknown[][]): Promise<number> {
    if (!rows.length) return 0;
    const cols = spec.columns.map((c) => c[0]);
    const values = `INSERT INTO ${spec.table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;
    // A plain insert says by its change count whether the row was new; only rows that were
    // already there pay for the merge (the common first load has few).
    const insert = this.prepare(`${values} ON CONFLICT (${spec.key}) DO NOTHING`);
    const merge = this.prepare(`${values} ${spec.conflict}`);
    let fresh = 0;
    for (const row of rows) {
      const r = bindable(row);
      if (insert.run(r).changes === 1) fresh++;
      else merge.run(r);
    }
    return fresh;
  }

  keyRows(keys: readonly string[]): { sql: string; params: unknown[] } {
    return { sql: '(SELECT value AS item FROM json_each(?)) AS k', params: [JSON.stringify(keys)] };
  }

  inKeys(column: string, keys: readonly string[]): { sql: string; params: unknown[] } {
    return { sql: `${column} IN (SELECT value FROM json_each(?))`, params: [JSON.stringify(keys)] };
  }

  async fastWrites(on: boolean): Promise<void> {
    const release = await this.#mutex.lock();
    try {
      this.#statements.clear();
      if (on) {
        // The table constraint's index cannot be dropped on its own: rebuild the (empty) table
        // without it; addEventIdentity builds it as a unique index, which ON CONFLICT uses alike.
        const { sql } = this.raw.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'raw_events'").get() as { sql: string };
        const without = sql.replace(EVENT_IDENTITY_CONSTRAINT, '');
        if (without === sql) throw new UsageError('cannot prepare a --fast load: raw_events has no identity constraint to defer');
        this.raw.exec(`BEGIN; DROP TABLE raw_events; ${without}; COMMIT`);
        // WAL cannot go straight to OFF, and better-sqlite3's defensive mode refuses OFF: lift it for this one switch.
        this.raw.pragma('journal_mode = DELETE');
        this.raw.unsafeMode(true);
        try {
          if (this.raw.pragma('journal_mode = OFF', { simple: true }) !== 'off') throw new Error('SQLite refused journal_mode=OFF');
        } finally {
          this.raw.unsafeMode(false);
        }
        this.raw.pragma('synchronous = OFF');
      } else {
        this.raw.pragma('synchronous = NORMAL');
        this.raw.pragma('journal_mode = WAL');
      }
    } finally {
      release();
    }
  }

  async addEventIdentity(): Promise<boolean> {
    const release = await this.#mutex.lock();
    try {
      this.raw.exec(`CREATE UNIQUE INDEX IF NOT EXISTS raw_events_identity ON raw_events (event_timestamp, payload_hash)`);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') return false;
      throw err;
    } finally {
      release();
    }
  }

  async updateMany(_tx: SqlRunner, table: string, columns: Array<[string, string]>, rows: unknown[][]): Promise<void> {
    const [key, ...rest] = columns.map((c) => c[0]);
    const st = this.prepare(`UPDATE ${table} SET ${rest.map((c) => `${c} = ?`).join(', ')} WHERE ${key} = ?`);
    for (const r of rows) {
      const b = bindable(r);
      st.run(...b.slice(1), b[0]);
    }
  }

  withMigrationLock<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    // BEGIN IMMEDIATE takes the write lock up front, so two processes never both migrate.
    return this.transaction(fn);
  }

  nowMsSql(): string {
    return `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`;
  }

  greatest(a: string, b: string): string {
    return `max(coalesce(${a}, ${b}), coalesce(${b}, ${a}))`;
  }

  least(a: string, b: string): string {
    return `min(coalesce(${a}, ${b}), coalesce(${b}, ${a}))`;
  }

  jsonArrayUnion(a: string, b: string): string {
    return `(SELECT json_group_array(value) FROM (SELECT DISTINCT value FROM (SELECT value FROM json_each(coalesce(${a}, '[]')) UNION SELECT value FROM json_each(coalesce(${b}, '[]'))) ORDER BY value))`;
  }

  binaryText(expr: string): string {
    // SQLite's default collation (BINARY) already compares bytes.
    return expr;
  }

  jsonText(expr: string, path: readonly string[]): string {
    // One path (not chained -> ->>): the document is parsed once.
    return `${expr} ->> '$.${path.join('.')}'`;
  }

  jsonParam(): string {
    return '?';
  }

  jsonArrayTexts(expr: string): string {
    return `json_each(${expr})`;
  }

  /**
   * The run lock is SQLite's own write lock on a companion file (`<db>.<name>.lock`), taken with
   * BEGIN IMMEDIATE on a connection of its own and held, never written: the kernel frees it when
   * the process dies, kill -9 included. Who holds it is written beside it (`….lock.json`).
   */
  async tryRunLock(name: string, holder: LockHolder): Promise<LockAttempt> {
    const lockFile = `${this.file}.${name}.lock`;
    const infoFile = `${lockFile}.json`;
    let conn: Database.Database;
    try {
      createPrivateFile(lockFile);
      conn = new Database(lockFile, { timeout: 0 });
    } catch (err) {
      throw new UsageError(`cannot use the lock file ${lockFile}: ${errorMessage(err)}`);
    }
    try {
      conn.exec('BEGIN IMMEDIATE');
    } catch (err) {
      conn.close();
      const code = (err as { code?: string }).code ?? '';
      if (!code.startsWith('SQLITE_BUSY') && !code.startsWith('SQLITE_LOCKED')) throw new UsageError(`cannot lock ${lockFile}: ${errorMessage(err)}`);
      // The holder writes who it is just after taking the lock: give it a moment to say so.
      let who = readHolder(infoFile);
      for (let i = 0; who === null && i < 20; i++) {
        await new Promise((r) => setTimeout(r, 50));
        who = readHolder(infoFile);
      }
      return { busy: who };
    }
    const tmp = `${infoFile}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, `${JSON.stringify(holder)}\n`, { mode: 0o640 });
      fs.renameSync(tmp, infoFile);
    } catch {
      fs.rmSync(tmp, { force: true }); // who holds it is a courtesy; the lock itself is held
    }
    return {
      held: {
        release: async () => {
          if (!conn.open) return;
          fs.rmSync(infoFile, { force: true });
          conn.exec('ROLLBACK');
          conn.close();
        },
      },
    };
  }

  bool(v: boolean): string {
    return v ? '1' : '0';
  }

  async describe(): Promise<Record<string, string | number>> {
    const size = fs.statSync(this.file).size;
    const wal = fs.existsSync(`${this.file}-wal`) ? fs.statSync(`${this.file}-wal`).size : 0;
    const version = (this.raw.prepare('select sqlite_version() as v').get() as { v: string }).v;
    return { file: this.file, file_bytes: size + wal, sqlite_version: version };
  }

  async close(): Promise<void> {
    this.#statements.clear();
    if (this.raw.open) {
      try { this.raw.pragma('wal_checkpoint(TRUNCATE)'); } catch { /* another process may hold it */ }
      this.raw.close();
    }
  }
}
