/** Queue figures for live mode (`cowrie-loader follow --enrich`): what waits in the database, per source. */
import type { SqlRunner } from './dialects/types.js';

/**
 * IPs waiting for each of `sources`: never enriched (owed by every source), or with the source
 * in `enrichment_pending` (a sorted, comma-joined list of names).
 */
export async function countIpsWaiting(db: SqlRunner, sources: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (!sources.length) return out;
  const fresh = await db.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM ip_inventory WHERE enrichment_updated_at IS NULL');
  const never = Number(fresh[0]?.n ?? 0);
  const rows = await db.query<{ enrichment_pending: string; n: number | string }>(
    'SELECT enrichment_pending, COUNT(*) AS n FROM ip_inventory WHERE enrichment_pending IS NOT NULL AND enrichment_updated_at IS NOT NULL GROUP BY enrichment_pending',
  );
  for (const s of sources) out[s] = never;
  for (const r of rows) for (const name of r.enrichment_pending.split(',')) if (name in out) out[name] += Number(r.n);
  return out;
}

/** Distinct downloaded files never looked up or whose lookup failed (VirusTotal's queue). */
export async function countFilesWaiting(db: SqlRunner): Promise<number> {
  const rows = await db.query<{ n: number | string }>("SELECT COUNT(DISTINCT shasum) AS n FROM files WHERE enrichment_status IN ('pending', 'failed')");
  return Number(rows[0]?.n ?? 0);
}
