import type { DialectAdapter, SqlRunner } from './dialects/types.js';

/**
 * Downloaded files due for a VirusTotal lookup, one row per distinct SHA-256, newest first:
 * never looked up, `failed`, `unknown` for more than a day, or `enriched` longer ago than the TTL.
 */
export async function selectFilesToEnrich(db: SqlRunner, opts: { limit: number | null; unknownBefore: string; enrichedBefore: string }): Promise<string[]> {
  const rows = await db.query<{ shasum: string }>(
    `SELECT shasum, max(last_seen) AS seen FROM files
     WHERE enrichment_status IN ('pending', 'failed')
        OR (enrichment_status = 'unknown' AND (enrichment_updated_at IS NULL OR enrichment_updated_at < ?))
        OR (enrichment_status = 'enriched' AND (enrichment_updated_at IS NULL OR enrichment_updated_at < ?))
     GROUP BY shasum ORDER BY seen DESC, shasum${opts.limit ? ' LIMIT ?' : ''}`,
    opts.limit ? [opts.unknownBefore, opts.enrichedBefore, opts.limit] : [opts.unknownBefore, opts.enrichedBefore],
  );
  return rows.map((r) => r.shasum);
}

export interface FileVerdictRow {
  shasum: string;
  status: 'enriched' | 'unknown' | 'failed';
  enrichment: Record<string, unknown> | null;
  malicious: number | null;
  suspicious: number | null;
  harmless: number | null;
  undetected: number | null;
  label: string | null;
  lastAnalysisAt: string | null;
  updatedAt: string;
}

/** Write verdicts to every row with that hash (the same file downloaded in many sessions). */
export async function writeFileVerdicts(db: DialectAdapter, tx: SqlRunner, all: FileVerdictRow[]): Promise<void> {
  // A failed lookup changes only the status: the last good verdict stays readable.
  const failed = all.filter((r) => r.status === 'failed');
  const rows = all.filter((r) => r.status !== 'failed');
  await db.updateMany(tx, 'files', [['shasum', 'text'], ['enrichment_status', 'text'], ['enrichment_updated_at', 'timestamptz']],
    failed.map((r) => [r.shasum, r.status, r.updatedAt]));
  await db.updateMany(tx, 'files', [
    ['shasum', 'text'], ['enrichment_status', 'text'], ['enrichment', 'jsonb'], ['vt_malicious', 'integer'], ['vt_suspicious', 'integer'],
    ['vt_harmless', 'integer'], ['vt_undetected', 'integer'], ['vt_label', 'text'], ['vt_last_analysis_at', 'timestamptz'], ['enrichment_updated_at', 'timestamptz'],
  ], rows.map((r) => [r.shasum, r.status, r.enrichment ? JSON.stringify(r.enrichment) : null, r.malicious, r.suspicious, r.harmless, r.undetected, r.label, r.lastAnalysisAt, r.updatedAt]));
}
