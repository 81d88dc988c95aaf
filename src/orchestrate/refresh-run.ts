/**
 * One refresh as `cowrie-enrich refresh` runs it — the core refresh(), the status files' end
 * state, the summary line and the exit rule — shared by that command and cowrie-orchestrate.
 */
import { refresh, summaryLine, type RefreshOptions, type RefreshResult } from '../enrich/refresh.js';
import { UserError } from '../errors.js';
import { fmt } from '../log.js';
import type { Store } from '../store/store.js';

/** Runs refresh() and leaves the status files in their end state (complete, failed or aborted). */
export async function runRefresh(store: Store, o: RefreshOptions): Promise<RefreshResult> {
  let result: RefreshResult;
  try {
    result = await refresh(store, o);
  } catch (err) {
    o.status.finish((err as UserError).exitCode === 130 ? 'aborted' : 'failed');
    throw err;
  }
  o.status.finish(result.failedSources.length ? 'failed' : 'complete');
  return result;
}

/** The line `cowrie-enrich refresh` prints at the end: the guide's summary plus the run's details. */
export function refreshDoneLine(result: RefreshResult): string {
  const r = result.ips;
  const extra = result.sessionsAfterIps ? `; ${fmt(result.sessionsAfterIps)} of the sessions snapshotted after the IP passes` : '';
  const ipFacts = r ? [
    `${fmt(r.errors)} IP errors`,
    ...(r.pending ? [`${fmt(r.pending)} IPs pending`] : []),
    ...(r.notPublic ? [`${fmt(r.notPublic)} non-public IPs`] : []),
  ].join(', ') : '';
  return summaryLine(result)
    + (r ? ` (${ipFacts}; Cymru ${fmt(r.cymruEnriched)}/${fmt(r.needCymru)}; cache hits ${fmt(Object.values(r.cacheHits).reduce((a, b) => a + b, 0))}${extra}; ${r.seconds.wall.toFixed(1)} s)` : '');
}

/** Exit 1 when a source failed for the whole run; null when the refresh went well. */
export function refreshFailure(result: RefreshResult): UserError | null {
  if (!result.failedSources.length) return null;
  return new UserError(`source failed for the whole run: ${[...new Set(result.failedSources)].join(', ')} (the rest was enriched; affected items stay pending)`, 1);
}
