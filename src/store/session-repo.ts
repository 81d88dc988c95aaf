import type { SqlRunner } from './dialects/types.js';

/**
 * Session snapshots: what was known about the source IP when the session was first
 * enriched after it happened, frozen from then on. Set-based: one UPDATE … FROM per
 * commit, no per-row round trips. The JSON path operators work on both dialects
 * (SQLite >= 3.38 has -> and ->>).
 */
const CANDIDATES = `SELECT s.session_id FROM session_summaries s JOIN ip_inventory i ON i.ip_address = s.source_ip
  WHERE s.enrichment_at IS NULL AND i.enrichment_updated_at IS NOT NULL AND i.enrichment_updated_at >= ?
  ORDER BY s.last_event_at DESC, s.session_id LIMIT ?`;

/** Snapshot up to `limit` sessions (most recent first) whose IP was enriched at or after `ipEnrichedSince`; returns how many. */
export async function snapshotSessions(db: SqlRunner, opts: { limit: number; now: string; ipEnrichedSince: string }): Promise<number> {
  return db.run(
    `UPDATE session_summaries SET
       snapshot_asn = i.current_asn,
       snapshot_country = i.geo_country,
       snapshot_classification = coalesce(i.enrichment->'greynoise'->>'classification', 'unknown'),
       enrichment = i.enrichment,
       enrichment_at = ?
     FROM ip_inventory i
     WHERE i.ip_address = session_summaries.source_ip
       AND session_summaries.session_id IN (${CANDIDATES})`,
    [opts.now, opts.ipEnrichedSince, opts.limit],
  );
}

export async function countSessionCandidates(db: SqlRunner, ipEnrichedSince: string): Promise<number> {
  const [r] = await db.query<{ n: number | string }>(
    `SELECT count(*) AS n FROM session_summaries s JOIN ip_inventory i ON i.ip_address = s.source_ip
     WHERE s.enrichment_at IS NULL AND i.enrichment_updated_at IS NOT NULL AND i.enrichment_updated_at >= ?`,
    [ipEnrichedSince],
  );
  return Number(r.n);
}
