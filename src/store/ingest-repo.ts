import type { DialectAdapter, SqlRunner } from './dialects/types.js';
import { nowIso } from './time.js';

/** One Cowrie event as stored in raw_events (timestamps already ISO-8601 UTC, micro precision). */
export interface EventRow {
  source: string;
  sourceOffset: number;
  sourceInode: string | null;
  sourceGeneration: number;
  sensor: string | null;
  sessionId: string | null;
  eventType: string;
  eventTimestamp: string;
  srcIp: string | null;
  payload: string;
  payloadHash: string;
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
  fileDownloads: number;
  clientVersion: string | null;
  hassh: string | null;
  protocol: string | null;
}

export interface FileDelta {
  sessionId: string;
  shasum: string;
  url: string | null;
  filename: string | null;
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
}

export interface BatchResult {
  inserted: number;
  duplicates: number;
  deadLettered: number;
  newSessions: number;
  newIps: number;
}

/**
 * Write one ingest batch in one transaction: events (deduplicated on their content hash),
 * then summaries computed from the events actually inserted — so loading anything twice
 * changes no count — then dead letters, then the file cursor. A killed process leaves
 * either all of a batch or none of it, and the cursor always matches what is stored.
 */
export async function writeIngestBatch<E extends EventRow>(
  db: DialectAdapter,
  batch: { events: E[]; deadLetters: DeadLetterRow[]; cursor: CursorRow | null; ingestId: string },
  summarise: (inserted: E[]) => Summary,
): Promise<BatchResult> {
  const now = nowIso();
  return db.transaction(async (tx) => {
    const hashes = await db.insertMany(tx, {
      table: 'raw_events',
      columns: [
        ['source', 'text'], ['source_offset', 'bigint'], ['source_inode', 'text'], ['source_generation', 'integer'],
        ['sensor', 'text'], ['session_id', 'text'], ['event_type', 'text'], ['event_timestamp', 'timestamptz'],
        ['src_ip', 'text'], ['payload', 'jsonb'], ['payload_hash', 'text'], ['ingest_id', 'text'], ['ingest_at', 'timestamptz'],
      ],
      conflict: 'ON CONFLICT (payload_hash) DO NOTHING',
      returning: 'payload_hash',
    }, batch.events.map((e) => [
      e.source, e.sourceOffset, e.sourceInode, e.sourceGeneration, e.sensor, e.sessionId, e.eventType,
      e.eventTimestamp, e.srcIp, e.payload, e.payloadHash, batch.ingestId, now,
    ]));
    const insertedSet = new Set(hashes as string[]);
    const inserted = batch.events.filter((e) => insertedSet.has(e.payloadHash) && insertedSet.delete(e.payloadHash));
    const summary = summarise(inserted);
    const newSessions = await upsertSessions(db, tx, summary.sessions);
    await upsertFiles(db, tx, summary.files);
    const newIps = await upsertIps(db, tx, summary.ips, summary.sessions);
    const dl = await db.insertMany(tx, {
      table: 'dead_letter_events',
      columns: [['source', 'text'], ['source_offset', 'bigint'], ['reason', 'text'], ['detail', 'text'], ['raw_line', 'text'], ['raw_hash', 'text'], ['created_at', 'timestamptz']],
      conflict: 'ON CONFLICT (raw_hash) DO NOTHING',
      returning: 'raw_hash',
    }, batch.deadLetters.map((d) => [d.source, d.sourceOffset, d.reason, d.detail, d.rawLine, d.rawHash, now]));
    if (batch.cursor) await saveCursor(tx, batch.cursor);
    return { inserted: inserted.length, duplicates: batch.events.length - inserted.length, deadLettered: dl.length, newSessions, newIps };
  });
}

async function upsertSessions(db: DialectAdapter, tx: SqlRunner, rows: SessionDelta[]): Promise<number> {
  if (!rows.length) return 0;
  const s = 'session_summaries';
  const x = 'excluded';
  // Every merge is order-independent (sums, least/greatest), so files load in any order to the same rows.
  const existing = await existingKeys(tx, s, 'session_id', rows.map((r) => r.sessionId));
  await db.insertMany(tx, {
    table: s,
    columns: [
      ['session_id', 'text'], ['sensor', 'text'], ['source_ip', 'text'], ['first_event_at', 'timestamptz'], ['last_event_at', 'timestamptz'],
      ['duration_seconds', 'double precision'], ['event_count', 'integer'], ['login_attempts', 'integer'], ['login_success', 'boolean'],
      ['command_count', 'integer'], ['file_downloads', 'integer'], ['client_version', 'text'], ['hassh', 'text'], ['protocol', 'text'],
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
      file_downloads = ${s}.file_downloads + ${x}.file_downloads,
      client_version = ${db.least(`${s}.client_version`, `${x}.client_version`)},
      hassh = ${db.least(`${s}.hassh`, `${x}.hassh`)},
      protocol = ${db.least(`${s}.protocol`, `${x}.protocol`)}`,
  }, rows.map((r) => [
    r.sessionId, r.sensor, r.sourceIp, r.firstEventAt, r.lastEventAt, r.durationSeconds, r.eventCount, r.loginAttempts,
    r.loginSuccess, r.commandCount, r.fileDownloads, r.clientVersion, r.hassh, r.protocol,
  ]));
  return rows.filter((r) => !existing.has(r.sessionId)).length;
}

async function existingKeys(tx: SqlRunner, table: string, column: string, keys: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (let k = 0; k < keys.length; k += 500) {
    const chunk = keys.slice(k, k + 500);
    const found = await tx.query<Record<string, string>>(`SELECT ${column} FROM ${table} WHERE ${column} IN (${chunk.map(() => '?').join(',')})`, chunk);
    for (const r of found) out.add(r[column]);
  }
  return out;
}

async function upsertFiles(db: DialectAdapter, tx: SqlRunner, rows: FileDelta[]): Promise<void> {
  if (!rows.length) return;
  const f = 'files';
  const x = 'excluded';
  await db.insertMany(tx, {
    table: f,
    columns: [['session_id', 'text'], ['shasum', 'text'], ['url', 'text'], ['filename', 'text'], ['first_seen', 'timestamptz'], ['last_seen', 'timestamptz']],
    conflict: `ON CONFLICT (session_id, shasum) DO UPDATE SET
      url = ${db.least(`${f}.url`, `${x}.url`)},
      filename = ${db.least(`${f}.filename`, `${x}.filename`)},
      first_seen = ${db.least(`${f}.first_seen`, `${x}.first_seen`)},
      last_seen = ${db.greatest(`${f}.last_seen`, `${x}.last_seen`)}`,
  }, rows.map((r) => [r.sessionId, r.shasum, r.url, r.filename, r.firstSeen, r.lastSeen]));
}

async function upsertIps(db: DialectAdapter, tx: SqlRunner, rows: IpDelta[], sessions: SessionDelta[]): Promise<number> {
  if (!rows.length) return 0;
  const i = 'ip_inventory';
  const x = 'excluded';
  const ips = rows.map((r) => r.ip);
  const existing = await existingKeys(tx, i, 'ip_address', ips);
  await db.insertMany(tx, {
    table: i,
    columns: [['ip_address', 'text'], ['first_seen', 'timestamptz'], ['last_seen', 'timestamptz'], ['sensors', 'jsonb'], ['session_count', 'integer']],
    conflict: `ON CONFLICT (ip_address) DO UPDATE SET
      first_seen = ${db.least(`${i}.first_seen`, `${x}.first_seen`)},
      last_seen = ${db.greatest(`${i}.last_seen`, `${x}.last_seen`)},
      sensors = ${db.jsonArrayUnion(`${i}.sensors`, `${x}.sensors`)}`,
  }, rows.map((r) => [r.ip, r.firstSeen, r.lastSeen, JSON.stringify([...r.sensors].sort()), 0]));
  // session_count = distinct sessions: recount the touched IPs from session_summaries, never add.
  const touched = [...new Set([...ips, ...sessions.map((s) => s.sourceIp).filter((v): v is string => !!v)])];
  for (let k = 0; k < touched.length; k += 500) {
    const chunk = touched.slice(k, k + 500);
    await tx.run(
      `UPDATE ${i} SET session_count = (SELECT count(*) FROM session_summaries s WHERE s.source_ip = ${i}.ip_address) WHERE ip_address IN (${chunk.map(() => '?').join(',')})`,
      chunk,
    );
  }
  return rows.filter((r) => !existing.has(r.ip)).length;
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
