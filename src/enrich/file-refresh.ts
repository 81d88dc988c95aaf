import { fmt, notice, type Logger } from '../log.js';
import { escapeControl } from '../text.js';
import type { StatusEmitter } from '../status/emitter.js';
import { claimedByOthers, unclaimed } from '../store/claim-repo.js';
import { filesDue, selectFilesToEnrich, writeFileVerdicts, type FileVerdictRow } from '../store/file-repo.js';
import type { Store } from '../store/store.js';
import { isoMicros } from '../store/time.js';
import type { WorkClaims } from './claims.js';
import { startSourceRun } from './runner.js';
import type { Source } from './sources/source.js';
import { virustotalParts, virustotalSource, type VirusTotalValue } from './sources/virustotal.js';
import { DAY_SECONDS, type SourceResult } from './sources/types.js';

export interface FileRefreshOptions {
  limit: number | null;
  commitInterval: number;
  offline: boolean;
  /** VirusTotal is in `--sources` (default: yes). */
  enabled?: boolean;
  /** windowMs and backoffMs exist for tests (a one-minute window is the public API's). */
  virustotal: { url: string; apiKey?: string; ratePerMinute: number; dailyQuota: number; windowMs?: number; backoffMs?: number };
  logger: Logger;
  status: StatusEmitter;
  signal?: AbortSignal;
  now?: () => Date;
  /** This run's claims: only hashes no other worker holds are selected, each claimed until committed. */
  claims: WorkClaims;
}

export interface FileRefreshResult {
  selected: number;
  updated: number;
  enriched: number;
  unknown: number;
  failed: number;
  pending: number;
  cacheHits: number;
  requests: number;
  failedSource: boolean;
}

function verdict(r: SourceResult<VirusTotalValue>, now: string): FileVerdictRow | null {
  const base = { shasum: r.key, updatedAt: now, enrichment: null, malicious: null, suspicious: null, harmless: null, undetected: null, label: null, lastAnalysisAt: null };
  if (r.status === 'hit' && r.value) {
    const v = r.value;
    return {
      ...base, status: 'enriched',
      enrichment: { virustotal: { ...v.trimmed, fetched_at: r.fetchedAt } },
      malicious: v.malicious, suspicious: v.suspicious, harmless: v.harmless, undetected: v.undetected, label: v.label,
      lastAnalysisAt: v.last_analysis_date ? isoMicros(v.last_analysis_date) : null,
    };
  }
  if (r.status === 'miss') return { ...base, status: 'unknown', enrichment: { virustotal: { found: false, fetched_at: r.fetchedAt } } };
  if (r.status === 'error') return { ...base, status: 'failed' };
  return null; // pending: not asked this run, left as it is
}

/** VirusTotal verdicts for downloaded files, rate-limited, quota-counted, cached 30 days. */
export async function refreshFiles(store: Store, o: FileRefreshOptions): Promise<FileRefreshResult> {
  const { logger, status } = o;
  const db = store.db;
  const clock = o.now ?? (() => new Date());
  const nowMs = clock().getTime();
  const res: FileRefreshResult = { selected: 0, updated: 0, enriched: 0, unknown: 0, failed: 0, pending: 0, cacheHits: 0, requests: 0, failedSource: false };
  const due = { unknownBefore: isoMicros(nowMs - DAY_SECONDS * 1000), enrichedBefore: isoMicros(nowMs - 30 * DAY_SECONDS * 1000) };
  // Files this run will ask about are claimed until their verdicts are committed (claims.ts); a run
  // that will not ask only counts them. Hashes another worker holds are left to it.
  const asking = !o.offline && o.enabled !== false && !!o.virustotal.apiKey;
  const only = unclaimed(db, 'file', 'files.shasum');
  const hashes = asking
    ? await o.claims.take('file', o.limit, (limit) => selectFilesToEnrich(db, { ...due, limit, only }), (h) => h)
    : await selectFilesToEnrich(db, { ...due, limit: o.limit, only });
  res.selected = hashes.length;
  logger.info(`[files] Processing ${hashes.length} files for re-enrichment...`);
  const elsewhere = await claimedByOthers(db, 'file', o.claims.holder, 'files', 'shasum', filesDue(due));
  if (elsewhere.items) {
    notice(logger, `[files] ${fmt(elsewhere.items)} files due are being looked up by another worker (${escapeControl(elsewhere.holders.slice(0, 3).join(', '))}${elsewhere.holders.length > 3 ? ', …' : ''}); left to it`);
  }
  if (!hashes.length) {
    logger.info('[files] 0 files updated');
    return res;
  }
  if (o.offline) {
    logger.info('[files] --offline: VirusTotal lookups skipped');
    res.pending = hashes.length;
    logger.info('[files] 0 files updated');
    return res;
  }
  if (o.enabled === false) {
    logger.info('[files] virustotal is not in --sources: VirusTotal lookups skipped');
    res.pending = hashes.length;
    logger.info('[files] 0 files updated');
    return res;
  }
  if (!o.virustotal.apiKey) {
    logger.info('[files] VT_API_KEY is not set: VirusTotal lookups skipped');
    res.pending = hashes.length;
    logger.info('[files] 0 files updated');
    return res;
  }

  let buffer: FileVerdictRow[] = [];
  const commit = async (force: boolean) => {
    if (!buffer.length || (!force && buffer.length < o.commitInterval)) return;
    const rows = buffer;
    buffer = [];
    await db.transaction((tx) => writeFileVerdicts(db, tx, rows));
    res.updated += rows.length;
    logger.info(`[files] committed ${res.updated} rows...`);
    status.update('files', { files_processed: res.updated, files_total: hashes.length, file_errors: res.failed, cache_hits: res.cacheHits, requests: res.requests });
  };
  const take = async (r: SourceResult<VirusTotalValue>) => {
    const row = verdict(r, isoMicros(clock()));
    if (!row) { res.pending++; return; }
    if (row.status === 'enriched') res.enriched++;
    else if (row.status === 'unknown') res.unknown++;
    else res.failed++;
    buffer.push(row);
    await commit(false);
  };

  const { handle, limits } = virustotalParts({ ...o.virustotal, apiKey: o.virustotal.apiKey });
  // Cached answers first, then the network under the declared rate and quota. Each answer is
  // committed to enrichment_cache before it is counted or written to files: a crash never pays twice.
  // Ctrl-C stops new requests; those in flight finish and are kept (paid for), the rest is
  // abandoned after a short grace.
  const run = startSourceRun<VirusTotalValue>({
    db, source: virustotalSource as unknown as Source<VirusTotalValue>, handle, limits, keys: hashes, logger, signal: o.signal,
    onResult: (r) => take(r),
  });
  let outcome;
  try {
    await run.resultsFor(hashes);
  } finally {
    // Even when interrupted: whatever was answered is stored before we stop.
    outcome = await run.finish(false).finally(() => commit(true));
  }
  const counts = run.counts();
  res.cacheHits = counts.cacheHits;
  res.requests = counts.requests;
  if (outcome.failedForRun) res.failedSource = true;
  if (outcome.answeredNone) {
    logger.error(`[files] VirusTotal failed for every file asked this run (${fmt(counts.failed)}; last: ${outcome.lastFailure}); they stay failed for the next run`);
  }
  if (outcome.stop === 'quota') logger.warn(`[files] VirusTotal daily quota spent: ${res.pending} files stay pending until tomorrow (UTC)`);
  await commit(true);
  status.update('files', { files_processed: res.updated, files_total: hashes.length, file_errors: res.failed, cache_hits: res.cacheHits, requests: res.requests, pending: res.pending }, { force: true });
  logger.info(`[files] ${res.updated} files updated`);
  if (res.failed) logger.info(`[files] ${fmt(res.failed)} lookups failed and will be retried next run`);
  return res;
}
