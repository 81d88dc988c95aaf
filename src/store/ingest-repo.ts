import { UsageError } from '../errors.js';
import type { DialectAdapter, SqlRunner } from './dialects/types.js';
import { lockSessionsForRollups, writeReportFacts, writeReportRollups, type ReportFacts } from './report-facts-repo.js';
import type { Mutex } from './mutex.js';
import { nowIso } from './time.js';

/** One Cowrie event as stored in raw_events (timestamps already ISO-8601 UTC, micro precision); its file is an EventFile. */
export interface EventRow {
  sourceOffset: number;
  sensor: string | null;
  sessionId: string | null;
  eventType: string;
  eventTimestamp: string;
  srcIp: string | null;
  payload: string;
  payloadHash: string;
}

/** The file a write's events come from (the same for every event of one `write`). */
export interface EventFile {
  source: string;
  sourceInode: string | null;
  sourceGeneration: number;
}

export interface SessionDelta {
  sessionId: string;
  sensor: string | null;
  sourceIp: string | null;
  firstEventAt: string;
  lastEventAt: string;
  durationSeconds: number | null;
  eventCount: number;
  loginAttempts: number;
  loginSuccess: boolean;
  commandCount: number;
  clientVersion: string | null;
  hassh: string | null;
  protocol: string | null;
}

export interface FileDelta {
  sessionId: string;
  shasum: string;
  url: string | null;
  filename: string | null;
  /** Seen in a `cowrie.session.file_download` (not only an upload): counts in `session_summaries.file_downloads`. */
  downloaded: boolean;
  firstSeen: string;
  lastSeen: string;
}

export interface IpDelta {
  ip: string;
  firstSeen: string;
  lastSeen: string;
  sensors: string[];
}

export interface DeadLetterRow {
  source: string;
  sourceOffset: number | null;
  reason: string;
  detail: string | null;
  rawLine: string | null;
  rawHash: string;
}

export interface CursorRow {
  source: string;
  inode: string | null;
  generation: number;
  byteOffset: number;
  firstLineHash: string | null;
  sourceSize: number | null;
}

export interface Summary {
  sessions: SessionDelta[];
  files: FileDelta[];
  ips: IpDelta[];
  /** Credentials and commands for cowrie-report (report-facts-repo.ts). */
  facts?: ReportFacts;
}

/** Collects what inserted events add to the summaries (the ingest side's SummaryBuilder). */
export interface SummarySink<E> {
  add(e: E): void;
  result(): Summary;
}

export interface BatchResult {
  inserted: number;
  duplicates: number;
  deadLettered: number;
  newSessions: number;
  newIps: number;
}

/** Per-row columns of raw_events; the file, ingest id and time are constants of a write (EVENT_CONSTANTS). */
const EVENT_COLUMNS: Array<[string, string]> = [
  ['source_offset', 'bigint'], ['sensor', 'text'], ['session_id', 'text'], ['event_type', 'text'], ['event_timestamp', 'timestamptz'],
  ['src_ip', 'text'], ['payload', 'jsonb'], ['payload_hash', 'text'],
];
const EVENT_HASH_AT = 7;
const DEAD_LETTER_COLUMNS: Array<[string, string]> = [
  ['source', 'text'], ['source_offset', 'bigint'], ['reason', 'text'], ['detail', 'text'], ['raw_line', 'text'], ['raw_hash', 'text'],
];

/**
 * Writes one ingest transaction piece by piece: events go in as they are parsed (deduplicated on
 * their content hash), and only the events actually inserted feed the summaries, which are
 * written with the cursor when the transaction ends — so loading anything twice changes no count.
 */
export class IngestBatchWriter<E extends EventRow> {
  readonly #db: DialectAdapter;
  readonly #tx: SqlRunner;
  readonly #ingestId: string;
  readonly #now = nowIso();
  readonly #summary: SummarySink<E>;
  readonly #dedupe: boolean;
  #inserted = 0;
  #duplicates = 0;
  #deadLettered = 0;

  /** `dedupe: false` (a --fast load): plain inserts, duplicates removed once the load is over (finishFastLoad). */
  constructor(db: DialectAdapter, tx: SqlRunner, ingestId: string, summary: SummarySink<E>, dedupe = true) {
    this.#dedupe = dedupe;
    this.#db = db;
    this.#tx = tx;
    this.#ingestId = ingestId;
    this.#summary = summary;
  }

  /** Insert events and dead letters; returns how many events were new. Events of one call come from one file. */
  async write(file: EventFile, events: E[], deadLetters: DeadLetterRow[]): Promise<number> {
    let inserted = 0;
    if (events.length) {
      const rows = new Array<unknown[]>(events.length);
      for (let i = 0; i < events.length; i++) {
        const e = events[i];
        rows[i] = [e.sourceOffset, e.sensor, e.sessionId, e.eventType, e.eventTimestamp, e.srcIp, e.payload, e.payloadHash];
      }
      const fresh = await this.#db.insertNew(this.#tx, {
        table: 'raw_events', columns: EVENT_COLUMNS, conflictKey: this.#dedupe ? 'event_timestamp, payload_hash' : null, identity: EVENT_HASH_AT,
        constants: [
          ['source', 'text', file.source], ['source_inode', 'text', file.sourceInode], ['source_generation', 'integer', file.sourceGeneration],
          ['ingest_id', 'text', this.#ingestId], ['ingest_at', 'timestamptz', this.#now],
        ],
      }, rows);
      // Only events actually inserted feed the summaries (the same event twice in a call goes in once).
      for (let i = 0; i < events.length; i++) if (fresh[i] === 1) { this.#summary.add(events[i]); inserted++; }
      this.#inserted += inserted;
      this.#duplicates += events.length - inserted;
    }
    if (deadLetters.length) {
      const dl = await this.#db.insertNew(this.#tx, {
        table: 'dead_letter_events', columns: DEAD_LETTER_COLUMNS, conflictKey: 'raw_hash', identity: 5,
        constants: [['created_at', 'timestamptz', this.#now]],
      }, deadLetters.map((d) => [d.source, d.sourceOffset, d.reason, d.detail, d.rawLine, d.rawHash]));
      for (const v of dl) this.#deadLettered += v;
    }
    return inserted;
  }

  /** Summaries of everything inserted so far, then the cursor; call once, last. */
  async finish(cursor: CursorRow | null): Promise<BatchResult> {
    const summary = byKey(this.#summary.result());
    const rollupBase = await lockSessionsForRollups(this.#tx, summary.sessions.map((s) => s.sessionId));
    const newSessions = await upsertSessions(this.#db, this.#tx, summary.sessions);
    await upsertFiles(this.#db, this.#tx, summary.files);
    await recountDownloads(this.#db, this.#tx, summary.files);
    const newIps = await upsertIps(this.#db, this.#tx, summary.ips, summary.sessions);
    if (summary.facts) await writeReportFacts(this.#db, this.#tx, summary.facts);
    await writeReportRollups(this.#db, this.#tx, rollupBase, summary.facts);
    if (cursor) await saveCursor(this.#tx, cursor);
    return { inserted: this.#inserted, duplicates: this.#duplicates, deadLettered: this.#deadLettered, newSessions, newIps };
  }
}

/**
 * Summary rows in key order: loaders for several sensors committing at once lock the rows they
 * share (mostly ip_inventory) in one order, so they wait for each other instead of deadlocking.
 */
function byKey(s: Summary): Summary {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    ...s,
    sessions: [...s.sessions].sort((a, b) => cmp(a.sessionId, b.sessionId)),
    files: [...s.files].sort((a, b) => cmp(a.sessionId, b.sessionId) || cmp(a.shasum, b.shasum)),
    ips: [...s.ips].sort((a, b) => cmp(a.ip, b.ip)),
  };
}

/**
 * One ingest transaction: `fill` writes events through the writer and returns the file cursor
 * that matches what it wrote. A killed process leaves all of a transaction or none of it, and
 * the cursor always matches what is stored.
 */
export async function writeIngestTransaction<E extends EventRow>(
  db: DialectAdapter,
  opts: { ingestId: string; summary: () => SummarySink<E>; dedupe?: boolean; finishLock?: Mutex },
  fill: (w: IngestBatchWriter<E>) => Promise<CursorRow | null>,
): Promise<BatchResult> {
  let release: (() => void) | null = null;
  try {
    // `fill` reads the log as it goes: a retried callback would skip what the rolled-back try read.
    return await db.transactionNoRetry(async (tx) => {
      const w = new IngestBatchWriter<E>(db, tx, opts.ingestId, opts.summary(), opts.dedupe ?? true);
      const cursor = await fill(w);
      // Files loading side by side write their events at once but their summaries one at a time,
      // held to the commit: summary rows are then never locked by two transactions in turn (no deadlock).
      if (opts.finishLock) release = await opts.finishLock.lock();
      return w.finish(cursor);
    });
  } finally {
    (release as (() => void) | null)?.();
  }
}

async function upsertSessions(db: DialectAdapter, tx: SqlRunner, rows: SessionDelta[]): Promise<number> {
  if (!rows.length) return 0;
  const s = 'session_summaries';
  const x = 'excluded';
  // Every merge is order-independent (sums, least/greatest), so files load in any order to the same rows;
  // file_downloads is recounted from `files` (upsertFiles), never added.
  return db.upsertCountNew(tx, {
    table: s,
    key: 'session_id',
    columns: [
      ['session_id', 'text'], ['sensor', 'text'], ['source_ip', 'text'], ['first_event_at', 'timestamptz'], ['last_event_at', 'timestamptz'],
      ['duration_seconds', 'double precision'], ['event_count', 'integer'], ['login_attempts', 'integer'], ['login_success', 'boolean'],
      ['command_count', 'integer'], ['client_version', 'text'], ['hassh', 'text'], ['protocol', 'text'],
    ],
    conflict: `ON CONFLICT (session_id) DO UPDATE SET
      sensor = ${db.least(`${s}.sensor`, `${x}.sensor`)},
      source_ip = ${db.least(`${s}.source_ip`, `${x}.source_ip`)},
      first_event_at = ${db.least(`${s}.first_event_at`, `${x}.first_event_at`)},
      last_event_at = ${db.greatest(`${s}.last_event_at`, `${x}.last_event_at`)},
      duration_seconds = ${db.greatest(`${s}.duration_seconds`, `${x}.duration_seconds`)},
      event_count = ${s}.event_count + ${x}.event_count,
      login_attempts = ${s}.login_attempts + ${x}.login_attempts,
      login_success = ${db.greatest(`${s}.login_success`, `${x}.login_success`)},
      command_count = ${s}.command_count + ${x}.command_count,
      client_version = ${db.least(`${s}.client_version`, `${x}.client_version`)},
      hassh = ${db.least(`${s}.hassh`, `${x}.hassh`)},
      protocol = ${db.least(`${s}.protocol`, `${x}.protocol`)}`,
  }, rows.map((r) => [
    r.sessionId, r.sensor, r.sourceIp, r.firstEventAt, r.lastEventAt, r.durationSeconds, r.eventCount, r.loginAttempts,
    r.loginSuccess, r.commandCount, r.clientVersion, r.hassh, r.protocol,
  ]));
}

async function upsertFiles(db: DialectAdapter, tx: SqlRunner, rows: FileDelta[]): Promise<void> {
  if (!rows.length) return;
  const f = 'files';
  const x = 'excluded';
  await db.insertMany(tx, {
    table: f,
    columns: [
      ['session_id', 'text'], ['shasum', 'text'], ['url', 'text'], ['filename', 'text'], ['downloaded', 'boolean'],
      ['first_seen', 'timestamptz'], ['last_seen', 'timestamptz'],
    ],
    conflict: `ON CONFLICT (session_id, shasum) DO UPDATE SET
      url = ${db.least(`${f}.url`, `${x}.url`)},
      filename = ${db.least(`${f}.filename`, `${x}.filename`)},
      downloaded = ${db.greatest(`${f}.downloaded`, `${x}.downloaded`)},
      first_seen = ${db.least(`${f}.first_seen`, `${x}.first_seen`)},
      last_seen = ${db.greatest(`${f}.last_seen`, `${x}.last_seen`)}`,
  }, rows.map((r) => [r.sessionId, r.shasum, r.url, r.filename, r.downloaded, r.firstSeen, r.lastSeen]));
}

/**
 * session_summaries.file_downloads = distinct SHA-256s downloaded in the session. Cowrie 1.x logs
 * every wget twice, so counting events would double it; a recount from `files` is the same
 * whatever the load order and however often a file is loaded.
 */
async function recountDownloads(db: DialectAdapter, tx: SqlRunner, rows: FileDelta[]): Promise<void> {
  const sessions = [...new Set(rows.filter((r) => r.downloaded).map((r) => r.sessionId))];
  if (!sessions.length) return;
  const which = db.inKeys('session_id', sessions);
  await tx.run(
    `UPDATE session_summaries SET file_downloads = (SELECT count(*) FROM files f WHERE f.session_id = session_summaries.session_id AND f.downloaded = ${db.bool(true)})
     WHERE ${which.sql}`,
    which.params,
  );
}

async function upsertIps(db: DialectAdapter, tx: SqlRunner, rows: IpDelta[], sessions: SessionDelta[]): Promise<number> {
  if (!rows.length) return 0;
  const i = 'ip_inventory';
  const x = 'excluded';
  const fresh = await db.upsertCountNew(tx, {
    table: i,
    key: 'ip_address',
    columns: [['ip_address', 'text'], ['first_seen', 'timestamptz'], ['last_seen', 'timestamptz'], ['sensors', 'jsonb'], ['session_count', 'integer']],
    conflict: `ON CONFLICT (ip_address) DO UPDATE SET
      first_seen = ${db.least(`${i}.first_seen`, `${x}.first_seen`)},
      last_seen = ${db.greatest(`${i}.last_seen`, `${x}.last_seen`)},
      sensors = ${db.jsonArrayUnion(`${i}.sensors`, `${x}.sensors`)}`,
  }, rows.map((r) => [r.ip, r.firstSeen, r.lastSeen, JSON.stringify([...r.sensors].sort()), 0]));
  // session_count = distinct sessions: recount from session_summaries, never add. Only an IP of a
  // session written in this batch can have gained one (a new IP starts at 0).
  const touched = [...new Set(sessions.map((s) => s.sourceIp).filter((v): v is string => !!v))];
  if (touched.length) {
    const which = db.inKeys('ip_address', touched);
    await tx.run(
      `UPDATE ${i} SET session_count = (SELECT count(*) FROM session_summaries s WHERE s.source_ip = ${i}.ip_address) WHERE ${which.sql}`,
      which.params,
    );
  }
  return fresh;
}

export async function saveCursor(tx: SqlRunner, c: CursorRow): Promise<void> {
  await tx.run(
    `INSERT INTO ingest_cursors (source, inode, generation, byte_offset, first_line_hash, source_size, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (source) DO UPDATE SET inode = excluded.inode, generation = excluded.generation, byte_offset = excluded.byte_offset,
       first_line_hash = excluded.first_line_hash, source_size = excluded.source_size, updated_at = excluded.updated_at`,
    [c.source, c.inode, c.generation, c.byteOffset, c.firstLineHash, c.sourceSize, nowIso()],
  );
}

export async function loadCursors(db: DialectAdapter): Promise<Map<string, CursorRow>> {
  const rows = await db.query<{ source: string; inode: string | null; generation: number; byte_offset: number | string; first_line_hash: string | null; source_size: number | string | null }>(
    'SELECT source, inode, generation, byte_offset, first_line_hash, source_size FROM ingest_cursors',
  );
  return new Map(rows.map((r) => [r.source, {
    source: r.source, inode: r.inode, generation: Number(r.generation), byteOffset: Number(r.byte_offset),
    firstLineHash: r.first_line_hash, sourceSize: r.source_size === null ? null : Number(r.source_size),
  }]));
}

/** schema_state key set while a --fast load runs: a database that still has it is incomplete. */
const INCOMPLETE_LOAD = 'incomplete_load';
/** Tables a --fast load must find empty. */
const LOADED_TABLES = ['raw_events', 'dead_letter_events', 'session_summaries', 'files', 'ip_inventory', 'ingest_cursors'];

/** The one line every command prints for a database whose --fast load did not finish. */
export function incompleteLoadMessage(display: string): string {
  return `database ${display} is incomplete: a cowrie-loader bulk --fast load into it did not finish; delete the database (or drop and recreate it on PostgreSQL) and load again`;
}

/** True when a --fast load was started on this database and never finished. */
export async function isIncompleteLoad(db: SqlRunner): Promise<boolean> {
  const rows = await db.query<{ value: string }>('SELECT value FROM schema_state WHERE key = ?', [INCOMPLETE_LOAD]);
  return rows.length > 0;
}

/**
 * Before a --fast load: the database must be empty. Marks it incomplete (committed while the
 * journal is still on), then defers the unique key and turns the journal off.
 */
export async function startFastLoad(db: DialectAdapter, display: string): Promise<void> {
  for (const t of LOADED_TABLES) {
    const [r] = await db.query<{ n: number | string }>(`SELECT count(*) AS n FROM (SELECT 1 FROM ${t} LIMIT 1) AS x`);
    if (Number(r.n) > 0) {
      throw new UsageError(`--fast loads only into an empty database, and ${display} already holds data (${t}): load without --fast`);
    }
  }
  await db.run('INSERT INTO schema_state (key, value) VALUES (?, ?)', [INCOMPLETE_LOAD, nowIso()]);
  await db.fastWrites(true);
}

/**
 * After a --fast load: build the unique key. Events loaded twice (the same log under two names)
 * were all inserted and summarised; when any exist, the extra copies are deleted and their sums
 * taken back out of session_summaries (every other summary merge — least, greatest, union, the
 * recounts — is the same with or without a copy). Returns how many copies were removed.
 */
export async function finishFastLoad(db: DialectAdapter): Promise<number> {
  let removed = 0;
  if (!(await db.addEventIdentity())) {
    removed = await db.transaction(async (tx) => {
      await tx.run(`CREATE TEMP TABLE fast_load_copies AS
        SELECT e.id, e.session_id, e.event_type FROM raw_events e
        JOIN (SELECT event_timestamp, payload_hash, min(id) AS keep FROM raw_events GROUP BY event_timestamp, payload_hash HAVING count(*) > 1) d
          ON e.event_timestamp = d.event_timestamp AND e.payload_hash = d.payload_hash AND e.id <> d.keep`);
      await tx.run(`UPDATE session_summaries SET
          event_count = event_count - (SELECT count(*) FROM fast_load_copies c WHERE c.session_id = session_summaries.session_id),
          login_attempts = login_attempts - (SELECT count(*) FROM fast_load_copies c WHERE c.session_id = session_summaries.session_id
            AND c.event_type IN ('cowrie.login.success', 'cowrie.login.failed')),
          command_count = command_count - (SELECT count(*) FROM fast_load_copies c WHERE c.session_id = session_summaries.session_id
            AND c.event_type = 'cowrie.command.input')
        WHERE session_id IN (SELECT session_id FROM fast_load_copies)`);
      const n = await tx.run('DELETE FROM raw_events WHERE id IN (SELECT id FROM fast_load_copies)');
      await tx.run('DROP TABLE fast_load_copies');
      return n;
    });
    if (!(await db.addEventIdentity())) throw new Error('raw_events still holds duplicate events after removing the copies');
  }
  await db.fastWrites(false);
  await db.run('DELETE FROM schema_state WHERE key = ?', [INCOMPLETE_LOAD]);
  return removed;
}
