/**
 * `[maxmind] auto_update = true`: before loading, the orchestrated run updates the MaxMind
 * databases when one is missing or older than `update_after_days` — `cowrie-enrich geoip update`,
 * with its HEAD check first, so a run that finds nothing newer downloads nothing.
 */
import type { MaxmindCredentials } from '../enrich/maxmind-update/download.js';
import { databaseStatus } from '../enrich/maxmind-update/status.js';
import { updateDatabases, type EditionResult } from '../enrich/maxmind-update/update.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

export interface MaxmindUpdatePlan {
  dir: string;
  editions: string[];
  afterDays: number;
  baseUrl: string;
  credentials: MaxmindCredentials;
  userAgent: string;
}

export interface MaxmindStepResult {
  /** current: nothing old enough to update; updated: the update ran and every edition is current. */
  outcome: 'current' | 'updated' | 'failed';
  editions: Array<{ edition: string; outcome: EditionResult['outcome']; message: string | null }>;
  error: string | null;
}

function editionMessage(r: EditionResult): string | null {
  switch (r.outcome) {
    case 'failed': return r.message;
    case 'not-tried': return r.because;
    case 'installed': return `installed the ${r.installed.buildDate} build`;
    default: return null;
  }
}

export async function maxmindStep(p: MaxmindUpdatePlan, o: { logger: Logger; signal?: AbortSignal }): Promise<MaxmindStepResult> {
  const rows = await databaseStatus(p.dir, p.editions, p.afterDays);
  const due = rows.filter((r) => r.health !== 'ok');
  if (!due.length) {
    o.logger.info(`MaxMind databases in ${p.dir} are at most ${p.afterDays} days old: no update`);
    return { outcome: 'current', editions: [], error: null };
  }
  o.logger.info(`MaxMind update: ${due.map((r) => `${r.edition} ${r.health}`).join(', ')} (update_after_days = ${p.afterDays})`);
  let results: EditionResult[];
  try {
    results = await updateDatabases({ dir: p.dir, editions: p.editions, baseUrl: p.baseUrl, credentials: p.credentials, logger: o.logger, signal: o.signal, userAgent: p.userAgent });
  } catch (err) {
    const error = `MaxMind update failed: ${errorMessage(err)}`;
    o.logger.error(`${error}; the refresh uses the databases already there`);
    return { outcome: 'failed', editions: [], error };
  }
  const editions = results.map((r) => ({ edition: r.edition, outcome: r.outcome, message: editionMessage(r) }));
  const bad = editions.filter((e) => e.outcome === 'failed' || e.outcome === 'not-tried');
  for (const e of editions) if (e.outcome === 'installed') o.logger.info(`MaxMind ${e.edition}: ${e.message}`);
  if (!bad.length) return { outcome: 'updated', editions, error: null };
  const error = `MaxMind update failed: ${bad.map((e) => `${e.edition}: ${e.message}`).join('; ')}`;
  o.logger.error(`${error}; the old files are untouched and used`);
  return { outcome: 'failed', editions, error };
}
