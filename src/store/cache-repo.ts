import type { DialectAdapter, SqlRunner } from './dialects/types.js';
import { addSeconds, isoMicros, nowIso, utcDay } from './time.js';
import { readJson } from './schema.js';

export interface CacheEntry<V = unknown> {
  key: string;
  value: V | null;
  fetchedAt: string;
  ttlSeconds: number;
  /** Database build or API version that produced the answer (kept inside an object value). */
  version?: string;
}

/** The key under which an answer's provenance rides inside its cached object. */
const VERSION_KEY = 'source_version';

/**
 * enrichment_cache: answers (negative ones too) keyed by (service, key) until they expire.
 * Written as answers arrive, so a crash never pays for the same answer twice.
 */
export async function getCached<V>(db: SqlRunner, service: string, keys: string[], now = nowIso()): Promise<Map<string, CacheEntry<V>>> {
  const out = new Map<string, CacheEntry<V>>();
  for (let k = 0; k < keys.length; k += 500) {
    const chunk = keys.slice(k, k + 500);
    const rows = await db.query<{ cache_key: string; value: unknown; fetched_at: string; expires_at: string }>(
      `SELECT cache_key, value, fetched_at, expires_at FROM enrichment_cache WHERE service = ? AND expires_at > ? AND cache_key IN (${chunk.map(() => '?').join(',')})`,
      [service, now, ...chunk],
    );
    for (const r of rows) {
      let value = readJson<V>(r.value);
      let version: string | undefined;
      if (value && typeof value === 'object' && !Array.isArray(value) && VERSION_KEY in value) {
        const { [VERSION_KEY]: v, ...rest } = value as Record<string, unknown>;
        version = typeof v === 'string' ? v : undefined;
        value = rest as V;
      }
      out.set(r.cache_key, {
        key: r.cache_key, value, fetchedAt: isoMicros(r.fetched_at),
        ttlSeconds: Math.round((Date.parse(r.expires_at) - Date.parse(now)) / 1000),
        ...(version ? { version } : {}),
      });
    }
  }
  return out;
}

export async function putCached(db: DialectAdapter, tx: SqlRunner, service: string, entries: CacheEntry[]): Promise<void> {
  const rows = entries.filter((e) => e.ttlSeconds > 0);
  if (!rows.length) return;
  await db.insertMany(tx, {
    table: 'enrichment_cache',
    columns: [['service', 'text'], ['cache_key', 'text'], ['value', 'jsonb'], ['fetched_at', 'timestamptz'], ['expires_at', 'timestamptz']],
    conflict: 'ON CONFLICT (service, cache_key) DO UPDATE SET value = excluded.value, fetched_at = excluded.fetched_at, expires_at = excluded.expires_at',
  }, dedupeLast(rows).map((e) => {
    const value = e.version && e.value && typeof e.value === 'object' && !Array.isArray(e.value) ? { ...e.value, [VERSION_KEY]: e.version } : e.value;
    const at = isoMicros(e.fetchedAt);
    return [service, e.key, JSON.stringify(value), at, addSeconds(at, e.ttlSeconds)];
  }));
}

function dedupeLast<T extends { key: string }>(rows: T[]): T[] {
  const m = new Map<string, T>();
  for (const r of rows) m.set(r.key, r);
  return [...m.values()];
}

/**
 * api_quota: calls per service per UTC day, shared by every process on the database.
 * One atomic upsert reserves calls only while they fit under the limit.
 */
export async function tryConsumeQuota(db: SqlRunner, service: string, n: number, limit: number, day = utcDay()): Promise<boolean> {
  if (n > limit) return false;
  const rows = await db.query<{ used: number }>(
    `INSERT INTO api_quota (service, day, used) VALUES (?, ?, ?)
     ON CONFLICT (service, day) DO UPDATE SET used = api_quota.used + excluded.used WHERE api_quota.used + excluded.used <= ?
     RETURNING used`,
    [service, day, n, limit],
  );
  return rows.length > 0;
}

export async function quotaUsed(db: SqlRunner, service: string, day = utcDay()): Promise<number> {
  const rows = await db.query<{ used: number }>('SELECT used FROM api_quota WHERE service = ? AND day = ?', [service, day]);
  return rows.length ? Number(rows[0].used) : 0;
}

/** Mark the rest of today's quota as spent (the provider said so, e.g. a 429 daily-limit answer). */
export async function exhaustQuota(db: SqlRunner, service: string, limit: number, day = utcDay()): Promise<void> {
  await db.run(
    `INSERT INTO api_quota (service, day, used) VALUES (?, ?, ?) ON CONFLICT (service, day) DO UPDATE SET used = ${'excluded.used'}`,
    [service, day, limit],
  );
}

/** Return `n` reserved but unused calls to today's count (never below zero). */
export async function releaseQuota(db: SqlRunner, service: string, n: number, day = utcDay()): Promise<void> {
  await db.run('UPDATE api_quota SET used = CASE WHEN used > ? THEN used - ? ELSE 0 END WHERE service = ? AND day = ?', [n, n, service, day]);
}
