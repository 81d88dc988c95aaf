import type { DialectAdapter, SqlRunner } from './dialects/types.js';

/**
 * Downloaded files due for a VirusTotal lookup, one row per distinct SHA-256, newest first:
 * never looked up, `failed`, `unknown` for more than a day, or `enriched` longer ago than the TTL.
 */
/** Files due for a VirusTotal lookup: never asked, failed, or their answer aged out. */
export function filesDue(opts: { unknownBefore: string; enrichedBefore: string }): { sql: string; params: unknown[] } {
  return {
    sql: `(files.enrichment_status IN ('pending', 'failed')
        OR (files.enrichment_status = 'unknown' AND (files.enrichment_updated_at IS NULL OR files.enrichment_updated_at < ?))
        OR (files.enrichment_status = 'enriched' AND (files.enrichment_updated_at IS NULL OR files.enrichment_updated_at < ?)))`,
    params: [opts.unknownBefore, opts.enrichedBefore],
  };
}

/** Hashes of the files due (filesDue), most recently seen first. */
export async function selectFilesToEnrich(db: SqlRunner, opts: {
  limit: number | null; unknownBefore: string; enrichedBefore: string;
  /** Only rows also matching this (claim-repo's `unclaimed`: no other worker holds them). */
  only?: { sql: string; params: unknown[] };
}): Promise<string[]> {
  const due = filesDue(opts);
  const rows = await db.query<{ shasum: string }>(
    `SELECT shasum, max(last_seen) AS seen FROM files
     WHERE ${due.sql}${opts.only ? ` AND ${opts.only.sql}` : ''}
     GROUP BY shasum ORDER BY seen DESC, shasum${opts.limit ? ' LIMIT ?' : ''}`,
    [...due.params, ...(opts.only?.params ?? []), ...(opts.limit ? [opts.limit] : [])],
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
