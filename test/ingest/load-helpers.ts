/**
 * Shared pieces of the loader tests: table snapshots without provenance columns, a loader
 * call with a memory logger, and hand-written Cowrie lines.
 */
import fs from 'node:fs';
import { afterEach } from 'vitest';
import path from 'node:path';
import { ingest, type IngestOptions, type IngestSummary } from '../../src/ingest/ingest.js';
import { MemoryLogger } from '../../src/log.js';
import { readBool, readJson } from '../../src/store/schema.js';
import { openStore, type Store } from '../../src/store/store.js';

/** Where a row came from and when it was written: allowed to differ between equivalent loads. */
export const PROVENANCE = new Set([
  'id', 'ingest_id', 'ingest_at', 'source', 'source_offset', 'source_inode', 'source_generation', 'created_at', 'updated_at',
]);

const CONTENT_TABLES: Record<string, string> = {
  raw_events: 'payload_hash',
  session_summaries: 'session_id',
  files: 'session_id, shasum',
  ip_inventory: 'ip_address',
  asn_inventory: 'asn_number',
  dead_letter_events: 'raw_hash',
};

const JSON_COLUMNS = new Set(['payload', 'sensors', 'enrichment']);
const BOOL_COLUMNS = new Set(['login_success', 'is_scanner']);

function normalise(column: string, v: unknown): unknown {
  if (JSON_COLUMNS.has(column)) return readJson(v);
  if (BOOL_COLUMNS.has(column)) return readBool(v);
  if (typeof v === 'bigint') return Number(v);
  return v;
}

/** Every content table, rows in key order, provenance columns left out, JSON and booleans read back. */
export async function snapshot(store: Store): Promise<Record<string, Array<Record<string, unknown>>>> {
  const out: Record<string, Array<Record<string, unknown>>> = {};
  for (const [table, key] of Object.entries(CONTENT_TABLES)) {
    const rows = await store.db.query<Record<string, unknown>>(`SELECT * FROM ${table} ORDER BY ${key}`);
    out[table] = rows.map((r) => {
      const o: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(r)) if (!PROVENANCE.has(k)) o[k] = normalise(k, v);
      return o;
    });
  }
  return out;
}

export async function count(store: Store, table: string, where = ''): Promise<number> {
  const [r] = await store.db.query<{ n: number | string }>(`SELECT count(*) AS n FROM ${table} ${where}`);
  return Number(r.n);
}

export async function load(store: Store, paths: string[], opts: Partial<Omit<IngestOptions, 'paths' | 'logger'>> = {}): Promise<IngestSummary & { log: string[] }> {
  const logger = new MemoryLogger();
  const s = await ingest(store, { paths, mode: 'bulk', logger, ...opts });
  return { ...s, log: logger.lines };
}

let seq = 0;
/** A Cowrie event line; `ts` is seconds after 2024-01-01T23:59:00Z unless a full timestamp is given. */
export function ev(eventid: string, session: string, ts: number | string, extra: Record<string, unknown> = {}): string {
  const timestamp = typeof ts === 'string' ? ts : new Date(Date.UTC(2024, 0, 1, 23, 59, 0) + ts * 1000).toISOString().replace('Z', `${String(seq++ % 1000).padStart(3, '0')}Z`);
  return JSON.stringify({ eventid, session, timestamp, src_ip: '203.0.113.7', sensor: 'hp-a', message: eventid, ...extra });
}

export function writeLines(file: string, lines: string[], append = false): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const text = lines.length ? `${lines.join('\n')}\n` : '';
  if (append) fs.appendFileSync(file, text);
  else fs.writeFileSync(file, text);
  return file;
}

/** Lines of a file that are complete (newline-terminated) and not blank. */
export function fileLines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').slice(0, -1).filter((l) => l !== '');
}

/** A fresh database per call, closed after each test of the enclosing describe. */
export function freshStores(d: { newUrl(): Promise<string> }): () => Promise<Store> {
  const open: Store[] = [];
  afterEach(async () => {
    while (open.length) await open.pop()!.close();
  });
  return async () => {
    const s = await openStore(await d.newUrl());
    open.push(s);
    return s;
  };
}
