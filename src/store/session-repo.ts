import type { SqlRunner } from './dialects/types.js';

/**
 * Session snapshots: what was known about the source IP when the session was first
 * enriched after it happened, frozen from then on. Set-based: candidates are read a page at a
 * time, then one UPDATE … FROM per commit, no per-row round trips. The JSON path operators work
 * on both dialects (SQLite >= 3.38 has -> and ->>).
 */

/** Where the previous batch stopped, newest first: (last_event_at, session_id) descending. */
export interface SnapshotCursor {
  lastEventAt: string | null;
  sessionId: string;
}

const CANDIDATE_FROM = `FROM session_summaries s JOIN ip_inventory i ON i.ip_address = s.source_ip
  WHERE s.enrichment_at IS NULL AND i.enrichment_updated_at IS NOT NULL AND i.enrichment_updated_at >= ?`;

/**
 * CANDIDATE_FROM, less sessions whose IP is still owed one of `waitFor` (live mode: a snapshot is
 * frozen, so it waits for the answers the HTTP loop is about to fetch). `enrichment_pending` is a
 * comma-joined list of names.
 */
function candidateFrom(ipEnrichedSince: string, waitFor: readonly string[] = []): { sql: string; params: unknown[] } {
  if (!waitFor.length) return { sql: CANDIDATE_FROM, params: [ipEnrichedSince] };
  const owed = waitFor.map(() => "',' || i.enrichment_pending || ',' LIKE ?").join(' OR ');
  return { sql: `${CANDIDATE_FROM} AND (i.enrichment_pending IS NULL OR NOT (${owed}))`, params: [ipEnrichedSince, ...waitFor.map((n) => `%,${n},%`)] };
}

/**
 * The next `limit` candidates after `after` (sessions without a snapshot whose IP was enriched at or
 * after `ipEnrichedSince`), most recent first. Keyset paging: sessions passed over because their IP
 * is not enriched yet are never scanned again in the same run. Sessions without a timestamp come last.
 * (The cursor test is written `<= … AND (< … OR …)` so the planner keeps an index range scan.)
 */
export async function sessionCandidates(
  db: SqlRunner, ipEnrichedSince: string, limit: number, after: SnapshotCursor | null, waitFor?: readonly string[],
): Promise<SnapshotCursor[]> {
  type Row = { session_id: string; last_event_at: string | null };
  const map = (rows: Row[]) => rows.map((r) => ({ lastEventAt: r.last_event_at, sessionId: r.session_id }));
  const from = candidateFrom(ipEnrichedSince, waitFor);
  if (!after || after.lastEventAt !== null) {
    const rows = await db.query<Row>(
      `SELECT s.session_id, s.last_event_at ${from.sql} AND s.last_event_at IS NOT NULL
       ${after ? 'AND s.last_event_at <= ? AND (s.last_event_at < ? OR s.session_id < ?)' : ''}
       ORDER BY s.last_event_at DESC, s.session_id DESC LIMIT ?`,
      after ? [...from.params, after.lastEventAt, after.lastEventAt, after.sessionId, limit] : [...from.params, limit],
    );
    if (rows.length) return map(rows);
    after = null;
  }
  const rows = await db.query<Row>(
    `SELECT s.session_id, s.last_event_at ${from.sql} AND s.last_event_at IS NULL
     ${after ? 'AND s.session_id < ?' : ''} ORDER BY s.session_id DESC LIMIT ?`,
    after ? [...from.params, after.sessionId, limit] : [...from.params, limit],
  );
  return map(rows);
}

/**
 * Snapshot these sessions (candidates just read) from their IPs' current data, in the caller's
 * transaction; returns how many were written. No `enrichment_at IS NULL` re-check here: on a
 * freshly loaded table without statistics PostgreSQL would scan the whole partial index for it.
 */
export async function snapshotSessions(tx: SqlRunner, sessionIds: string[], now: string): Promise<number> {
  let count = 0;
  for (let k = 0; k < sessionIds.length; k += 1000) {
    const chunk = sessionIds.slice(k, k + 1000);
    count += await tx.run(
      `UPDATE session_summaries SET
         snapshot_asn = i.current_asn,
         snapshot_country = i.geo_country,
         snapshot_classification = coalesce(i.enrichment->'greynoise'->>'classification', 'unknown'),
         enrichment = i.enrichment,
         enrichment_at = ?
       FROM ip_inventory i
       WHERE i.ip_address = session_summaries.source_ip
         AND i.enrichment_updated_at IS NOT NULL
         AND session_summaries.session_id IN (${chunk.map(() => '?').join(',')})`,
      [now, ...chunk],
    );
  }
  return count;
}

export async function countSessionCandidates(db: SqlRunner, ipEnrichedSince: string, waitFor?: readonly string[]): Promise<number> {
  const from = candidateFrom(ipEnrichedSince, waitFor);
  const [r] = await db.query<{ n: number | string }>(`SELECT count(*) AS n ${from.sql}`, from.params);
  return Number(r.n);
}

/** Sessions without a snapshot whose IP has no enrichment yet: they wait for the IP passes. */
export async function countSessionsAwaitingIps(db: SqlRunner): Promise<number> {
  const [r] = await db.query<{ n: number | string }>(
    `SELECT count(*) AS n FROM session_summaries s JOIN ip_inventory i ON i.ip_address = s.source_ip
     WHERE s.enrichment_at IS NULL AND i.enrichment_updated_at IS NULL`,
  );
  return Number(r.n);
}
