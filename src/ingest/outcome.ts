import { UserError } from '../errors.js';
import { escapeControl } from '../text.js';
import type { IngestSummary } from './ingest.js';

/**
 * Why a load failed as a whole (exit 1), or null: missing paths and files that could not be
 * loaded, each named (escaped: file names are attacker-influenced). cowrie-loader throws it;
 * cowrie-orchestrate reports it against the sensor.
 */
export function ingestFailure(summary: IngestSummary): UserError | null {
  const bad = summary.filesFailed.length + summary.missing.length;
  if (bad === 1 && summary.failures.length === 1 && summary.failures[0].reason !== 'read_error') return new UserError(summary.failures[0].message, 1);
  if (!bad) return null;
  const why = [...summary.missing.map(escapeControl), ...summary.failures.map((f) => (f.reason === 'read_error' ? escapeControl(f.path) : f.message))];
  return new UserError(`${bad} file(s) could not be loaded: ${why.join(', ')}`, 1);
}
