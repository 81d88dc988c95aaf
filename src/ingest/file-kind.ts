/**
 * What kind of file the loader has in hand: finished or possibly still written to (which decides
 * what happens to a last line without a newline), and a JSON log or something else.
 */
import { escapeControl } from '../text.js';
import { readLines, type Compression } from './reader.js';

/**
 * A plain file under a live name (`cowrie.json`, `cowrie.2023-11-30.json`) whose mtime is at least
 * this old counts as finished: its last line is loaded even without a newline (delta mode), and a
 * last line that is not complete JSON becomes a `truncated_line` dead letter. Cowrie writes whole
 * lines, so five quiet minutes mean the writer is gone, not mid-line.
 */
export const LIVE_FILE_QUIET_MS = 5 * 60 * 1000;

/** Why the last line of a file was left for a later run (not stored, not dead-lettered). */
export type HeldBackReason =
  /** Not complete JSON yet, and the file may still grow. */
  | 'incomplete_line'
  /** Complete, but in delta mode the live file changed less than LIVE_FILE_QUIET_MS ago. */
  | 'live_file';

/** Why a whole file could not be loaded. */
export type FileFailureReason = 'cowrie_text_log' | 'not_json_log' | 'read_error';

export interface FileFailure {
  path: string;
  reason: FileFailureReason;
  /** One line naming the file; escaped for the terminal in IngestSummary.failures. */
  message: string;
}

/** `cowrie.json.1`, `cowrie.json.2024-01-01`, `….gz`: names a file gets once it is rotated away. */
const ROTATED_NAME = /\.json\.[^/]+$/i;

export function isFinished(path: string, compression: Compression, mtimeMs: number, now: number): boolean {
  return compression !== 'none' || ROTATED_NAME.test(path) || now - mtimeMs >= LIVE_FILE_QUIET_MS;
}

/** Cowrie's text log starts each line with its timestamp and the Twisted system in brackets. */
const TEXT_LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d) \[/;
/** Lines looked at to tell a JSON log from something else. */
const SNIFF_LINES = 5;

/**
 * A file read from its start must look like a JSON log: at least one of its first few lines
 * starts with `{` (after copytruncate NULs and a byte-order mark). Otherwise it is Cowrie's text
 * log or something else, and reading it would only fill the dead-letter table.
 */
export async function sniffNotJson(path: string): Promise<FileFailure | null> {
  let first: string | null = null;
  let seen = 0;
  for await (const rec of readLines(path, { yieldPartial: true, maxLineBytes: 64 * 1024 })) {
    const text = rec.line.subarray(0, 256).toString('utf8').replace(/^[\0\ufeff\s]+/, '');
    if (text === '') continue;
    if (text.startsWith('{')) return null;
    first ??= text;
    if (++seen >= SNIFF_LINES) break;
  }
  if (first === null) return null; // empty: nothing to load, nothing wrong
  return TEXT_LOG_LINE.test(first)
    ? { path, reason: 'cowrie_text_log', message: `${path} is Cowrie's text log, not its JSON log: load cowrie.json ([output_jsonlog]) instead` }
    : { path, reason: 'not_json_log', message: `${path} is not a Cowrie JSON log (its first lines are not JSON objects)` };
}
