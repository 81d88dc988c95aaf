import type { Kysely } from 'kysely';
import type { ColumnTypes } from '../migrations.js';
import type { Database } from '../schema.js';

export type DialectName = 'sqlite' | 'postgres';

/** Raw SQL with `?` placeholders, run on one connection (inside a transaction when given one). */
export interface SqlRunner {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** Run a statement; returns the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

/** A multi-row insert: SQLite runs a prepared statement per row, PostgreSQL one UNNEST statement. */
export interface BulkInsert {
  table: string;
  /** Column name and its PostgreSQL array element type (text, bigint, double precision, boolean, jsonb, timestamptz). */
  columns: Array<[string, string]>;
  /** Everything after the VALUES: `ON CONFLICT … DO …`. */
  conflict: string;
  /** One column to return for rows actually inserted or updated. */
  returning?: string;
}

/** Who holds a run lock, as the next run reports it. */
export interface LockHolder {
  host: string;
  pid: number;
  /** ISO-8601 UTC. */
  startedAt: string;
}

/** A run lock this process holds until release() or its death (a crash or kill -9 frees it at once). */
export interface HeldLock {
  release(): Promise<void>;
}

export type LockAttempt = { held: HeldLock } | { busy: LockHolder | null };

/**
 * Rows that may already be stored: each is inserted unless it collides with the table's unique
 * key (`ON CONFLICT … DO NOTHING`). The caller learns which rows went in, without reading them back.
 */
export interface NewRowsInsert {
  table: string;
  /** Columns that differ from row to row, with their PostgreSQL types as in BulkInsert. */
  columns: Array<[string, string]>;
  /** Columns with one value for every row of the call: sent once, not per row. */
  constants: Array<[string, string, unknown]>;
  /** The unique key's columns, e.g. `event_timestamp, payload_hash`; null: a plain INSERT (a --fast load, key not built yet). */
  conflictKey: string | null;
  /** Index in `columns` of a column that alone identifies a row (PostgreSQL matches returned rows by it). */
  identity: number;
}

/** A multi-row upsert that tells new rows from merged ones. */
export interface BulkUpsert extends BulkInsert {
  /** The key column (a single text column), returned for the rows that were new. */
  key: string;
}

/**
 * Everything that differs between SQLite and PostgreSQL lives behind this
 * interface (Kysely's dialect pattern): capability hooks and SQL fragments,
 * never `if (dialect === …)` in the rest of the code.
 */
export interface DialectAdapter extends SqlRunner {
  readonly name: DialectName;
  readonly types: ColumnTypes;
  /** Files the loader may write at once, each in its own transactions. */
  readonly writeConnections: number;
  readonly kysely: Kysely<Database>;
  /** One transaction; on SQLite callers in this process are serialised (one connection). */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /**
   * One transaction whose callback cannot run twice (it consumes a stream, as ingest does): a
   * deadlock or serialization failure goes up instead of being retried, so nothing read is lost.
   */
  transactionNoRetry<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** A transaction that also holds the cross-process migration lock. */
  withMigrationLock<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** Insert many rows in the given transaction; returns the `returning` column of rows written (or [] without it). */
  insertMany(tx: SqlRunner, spec: BulkInsert, rows: unknown[][]): Promise<unknown[]>;
  /** Insert rows that may exist already; returns 1 for each row inserted, 0 for each skipped. */
  insertNew(tx: SqlRunner, spec: NewRowsInsert, rows: unknown[][]): Promise<Uint8Array>;
  /** Upsert rows (`conflict` is `ON CONFLICT (key) DO UPDATE …`); returns how many were new. */
  upsertCountNew(tx: SqlRunner, spec: BulkUpsert, rows: unknown[][]): Promise<number>;
  /** SQL and its parameters for `column` being one of `keys` (text): one array on PostgreSQL. */
  inKeys(column: string, keys: readonly string[]): { sql: string; params: unknown[] };
  /** SQL and its parameter for `keys` as a FROM-able table with one text column `item`. */
  keyRows(keys: readonly string[]): { sql: string; params: unknown[] };
  /**
   * A first load into an empty database (`cowrie-loader bulk --fast`): `true` drops raw_events'
   * unique key and turns the journal off (SQLite); `false` turns it back on. Not crash-safe.
   */
  fastWrites(on: boolean): Promise<void>;
  /** Build raw_events' unique key after a --fast load; false when duplicate rows prevent it. */
  addEventIdentity(): Promise<boolean>;
  /** Update many rows by key in the given transaction; column types as in BulkInsert (the first column is the key). */
  updateMany(tx: SqlRunner, table: string, columns: Array<[string, string]>, rows: unknown[][]): Promise<void>;
  /** SQL for the larger / smaller of two non-null-preferring values. */
  greatest(a: string, b: string): string;
  least(a: string, b: string): string;
  /** SQL for the sorted union of two JSON arrays of strings (either may be NULL). */
  jsonArrayUnion(a: string, b: string): string;
  /** SQL for a text expression compared byte by byte (ORDER BY, min, max) whatever the database's collation. */
  binaryText(expr: string): string;
  /** SQL for the text at a path of keys in a JSON column (NULL when missing). */
  jsonText(expr: string, path: readonly string[]): string;
  /** SQL for a JSON parameter placeholder. */
  jsonParam(): string;
  /** SQL for the database clock in milliseconds since the epoch (an integer): leases use one clock for all workers. */
  nowMsSql(): string;
  /** SQL literal for a boolean. */
  bool(v: boolean): string;
  /** SQL for the text elements of a JSON array column, as a table with one column `value` (FROM-able). */
  jsonArrayTexts(expr: string): string;
  /**
   * Try once to take the named run lock (never waits). PostgreSQL: a session advisory lock on a
   * connection of its own; SQLite: a kernel lock on a companion file. Either dies with the process.
   */
  tryRunLock(name: string, holder: LockHolder): Promise<LockAttempt>;
  /** Extra facts for `cowrie-db info`. */
  describe(): Promise<Record<string, string | number>>;
  close(): Promise<void>;
}
