import { fmt, type Logger } from '../log.js';
import type { StatusEmitter } from '../status/emitter.js';
import { getCached } from '../store/cache-repo.js';
import { selectFilesToEnrich, writeFileVerdicts, type FileVerdictRow } from '../store/file-repo.js';
import type { Store } from '../store/store.js';
import { isoMicros } from '../store/time.js';
import { AnswerBuffer, fromCache } from './answer-buffer.js';
import { databaseQuota } from './quota.js';
import type { LookupSummary } from './rate-limit.js';
import { createVirusTotalClient, type VirusTotalValue } from './sources/virustotal.js';
import { DAY_SECONDS, type QuotaGate, type SourceResult } from './sources/types.js';

export interface FileRefreshOptions {
  limit: number | null;
  commitInterval: number;
  offline: boolean;
  /** windowMs and backoffMs exist for tests (a one-minute window is the public API's). */
  virustotal: { url: string; apiKey?: string; ratePerMinute: number; dailyQuota: number; windowMs?: number; backoffMs?: number };
  logger: Logger;
  status: StatusEmitter;
  signal?: AbortSignal;
  now?: () => Date;
}

/** After Ctrl-C, how long requests already sent get to finish. */
const STOP_GRACE_MS = 2000;

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
  const hashes = await selectFilesToEnrich(db, {
    limit: o.limit,
    unknownBefore: isoMicros(nowMs - DAY_SECONDS * 1000),
    enrichedBefore: isoMicros(nowMs - 30 * DAY_SECONDS * 1000),
  });
  res.selected = hashes.length;
  logger.info(`[files] Processing ${hashes.length} files for re-enrichment...`);
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

  const cached = await getCached<VirusTotalValue>(db, 'virustotal', hashes);
  res.cacheHits = cached.size;
  for (const [, e] of cached) await take(fromCache(e, e.value && (e.value as { sha256?: string }).sha256 ? 'hit' : 'miss'));
  const toAsk = hashes.filter((h) => !cached.has(h));
  if (toAsk.length) {
    const quota = databaseQuota(db, 'virustotal', o.virustotal.dailyQuota);
    // Ctrl-C stops new requests through the quota gate (the client's hook before each send);
    // requests in flight finish and their answers are kept, since they are paid for.
    // Whatever is still waiting for a rate slot after a short grace is abandoned (no answer lost).
    let stopping = o.signal?.aborted ?? false;
    const hard = new AbortController();
    const onSignal = () => {
      stopping = true;
      setTimeout(() => hard.abort(o.signal?.reason), STOP_GRACE_MS).unref();
    };
    o.signal?.addEventListener('abort', onSignal, { once: true });
    const gate: QuotaGate = { tryConsume: (n) => (stopping ? Promise.resolve(false) : quota.tryConsume(n)), remaining: () => quota.remaining() };
    const clientLogger: Logger = {
      info: (m) => logger.info(m), error: (m) => logger.error(m), debug: (m) => logger.debug(m),
      warn: (m) => { if (!(stopping && /quota spent/.test(m))) logger.warn(m); },
    };
    const answers = new AnswerBuffer(db, 'virustotal');
    const client = createVirusTotalClient({
      url: o.virustotal.url, apiKey: o.virustotal.apiKey, ratePerMinute: o.virustotal.ratePerMinute, quota: gate, logger: clientLogger,
      windowMs: o.virustotal.windowMs, backoffMs: o.virustotal.backoffMs,
    });
    // Answers are serialised through one chain so commits never interleave.
    let chain = Promise.resolve();
    let summary: LookupSummary;
    // VirusTotal failed for the whole run when it was asked and answered nothing (exit 1).
    let answeredNow = 0;
    let failedNow = 0;
    let lastFailure = '';
    try {
      summary = await client.lookup(toAsk, (r) => {
        if (r.status === 'hit' || r.status === 'miss') answeredNow++;
        else if (r.status === 'error') {
          failedNow++;
          lastFailure = r.reason ?? '';
        }
        // Cached (committed) before it is counted or written to files: a crash never pays twice.
        const cached = answers.add(r);
        chain = chain.then(() => cached).then(() => take(r));
        return chain;
      }, hard.signal);
    } finally {
      // Even when interrupted: whatever was answered is stored before we stop.
      o.signal?.removeEventListener('abort', onSignal);
      await chain.catch(() => {});
      await answers.flush();
      await quota.close();
      await commit(true);
    }
    res.requests = summary.sent;
    if (summary.authError) res.failedSource = true;
    else if (failedNow > 0 && answeredNow === 0) {
      res.failedSource = true;
      logger.error(`[files] VirusTotal failed for every file asked this run (${fmt(failedNow)}; last: ${lastFailure}); they stay failed for the next run`);
    }
    if (summary.quotaExhausted && !stopping) {
      await quota.exhaust().catch(() => {});
      logger.warn(`[files] VirusTotal daily quota spent: ${res.pending} files stay pending until tomorrow (UTC)`);
    }
  }
  await commit(true);
  status.update('files', { files_processed: res.updated, files_total: hashes.length, file_errors: res.failed, cache_hits: res.cacheHits, requests: res.requests, pending: res.pending }, { force: true });
  logger.info(`[files] ${res.updated} files updated`);
  if (res.failed) logger.info(`[files] ${fmt(res.failed)} lookups failed and will be retried next run`);
  return res;
}
