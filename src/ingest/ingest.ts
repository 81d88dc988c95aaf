import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { UserError, errorMessage } from '../errors.js';
import { fmt, type Logger } from '../log.js';
import { loadCursors, writeIngestTransaction, type CursorRow, type DeadLetterRow, type EventRow } from '../store/ingest-repo.js';
import type { Store } from '../store/store.js';
import { isoMicros } from '../store/time.js';
import { escapeControl } from '../text.js';
import { detectCompression, findLogFiles, FOLDER_PATTERNS, hashFirstLine, readLines, type LineReader, type LineRecord, type ReadSummary } from './reader.js';
import { isFinished, LIVE_FILE_QUIET_MS, sniffNotJson, type FileFailure, type HeldBackReason } from './file-kind.js';
import { isDeadLetter, parseLine, tooLongDeadLetter, type DeadLetter, type ParsedEvent } from './parse.js';
import { SummaryBuilder, type SummarisableEvent } from './summarise.js';

/** Events per transaction unless told otherwise: large, because SQLite pays per commit (WAL checkpoints). */
export const DEFAULT_BATCH_SIZE = 50_000;

export { LIVE_FILE_QUIET_MS, type FileFailure, type FileFailureReason, type HeldBackReason } from './file-kind.js';


export interface IngestOptions {
  paths: string[];
  /** bulk: read every file whole; delta: only what was appended since the last run. */
  mode: 'bulk' | 'delta';
  sensor?: string;
  /** Events per transaction (default DEFAULT_BATCH_SIZE); a kill loses at most the open one. */
  batchSize?: number;
  logger: Logger;
  signal?: AbortSignal;
  onProgress?: (p: IngestProgress) => void;
}

export interface IngestProgress {
  filesDone: number;
  filesTotal: number;
  bytesRead: number;
  bytesTotal: number;
  eventsRead: number;
  inserted: number;
  deadLettered: number;
  currentFile: string | null;
  elapsedSeconds: number;
}

export interface IngestSummary extends IngestProgress {
  /** Files read this run (to their end, or as far as the run got); not skipped, not failed. */
  files: number;
  /** Files the paths expanded to. */
  filesFound: number;
  /** Unchanged since the last delta run: not read. */
  filesSkipped: number;
  filesFailed: string[];
  /** The same failures with their reason. */
  failures: FileFailure[];
  /** Paths that match nothing, and folders without Cowrie JSON logs. */
  missing: string[];
  /** Links inside a folder or glob that lead out of it (not followed). */
  linksNotFollowed: string[];
  duplicates: number;
  /** Of `deadLettered` (lines), how many were not already in dead_letter_events. */
  deadLetteredNew: number;
  /** Events read whose text was cleaned (NUL removed, lone surrogates replaced); see `_cleaned`. */
  cleaned: number;
  sessions: number;
  newIps: number;
  /** Last lines left for a later run, in all. */
  partialLines: number;
  heldBack: Record<HeldBackReason, number>;
  eventsPerSecond: number;
  interrupted: boolean;
}

export interface FilePlan {
  path: string;
  inode: string;
  size: number;
  startOffset: number;
  generation: number;
  firstLineHash: string | null;
  skip: boolean;
  /** Nothing will be appended any more: compressed, a rotated name, or quiet for LIVE_FILE_QUIET_MS. */
  finished: boolean;
  /** A last line without a newline that is complete JSON is loaded (bulk mode, or finished). */
  loadCompleteTail: boolean;
}


type Row = EventRow & SummarisableEvent;

/**
 * Lines parsed and written per statement. Small enough that a chunk's objects die young (peak RSS
 * stays low), large enough that a PostgreSQL round trip carries many rows.
 */
export const WRITE_CHUNK = 1000;

const identityKey = (inode: string, firstLineHash: string) => `${inode}\u0001${firstLineHash}`;

async function planFile(path: string, mode: IngestOptions['mode'], cursors: Map<string, CursorRow>, byIdentity: Map<string, CursorRow>): Promise<FilePlan> {
  const st = await fs.stat(path);
  const inode = `${st.dev}:${st.ino}`;
  const prev = cursors.get(path);
  const compression = await detectCompression(path);
  const finished = isFinished(path, compression, st.mtimeMs, Date.now());
  const base = {
    path, inode, size: st.size, generation: prev ? prev.generation : 0, firstLineHash: null, skip: false, startOffset: 0,
    finished, loadCompleteTail: mode === 'bulk' || finished,
  };
  if (mode === 'bulk') return base;
  // Cheap check first: a file whose size and inode are unchanged since it was read to the end has nothing new.
  if (prev && prev.inode === inode && prev.sourceSize === st.size && prev.byteOffset > 0) {
    return { ...base, firstLineHash: prev.firstLineHash, startOffset: prev.byteOffset, skip: true };
  }
  const firstLineHash = await hashFirstLine(path);
  // A plain file shorter than the cursor was truncated, whatever its first line says.
  const plain = compression === 'none';
  const fits = (c: CursorRow) => !plain || c.byteOffset <= st.size;
  if (prev && prev.inode === inode && prev.firstLineHash === firstLineHash && fits(prev)) {
    return { ...base, firstLineHash, startOffset: prev.byteOffset };
  }
  // Rotation by rename (cowrie.json → cowrie.json.1 → .2): the same inode and first line under a new
  // name — even when that name had a cursor of its own for the file that used to be there.
  const moved = firstLineHash === null ? undefined : byIdentity.get(identityKey(inode, firstLineHash));
  if (moved && fits(moved)) {
    return { ...base, firstLineHash, startOffset: moved.byteOffset, generation: prev ? prev.generation + 1 : moved.generation };
  }
  // New file, or replaced/truncated content at this path: read from the start, next generation.
  return { ...base, firstLineHash, generation: prev ? prev.generation + 1 : 0 };
}


/** Load Cowrie JSON logs; every committed transaction carries its cursor, so a killed run resumes exactly. */
export async function ingest(store: Store, opts: IngestOptions): Promise<IngestSummary> {
  const started = Date.now();
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const { logger } = opts;
  const ingestId = crypto.randomUUID();
  const found = await findLogFiles(opts.paths);
  const missing = [...found.missing, ...found.empty];
  if (found.files.length === 0) {
    // Nothing to read at all: one line that says why, instead of an empty summary.
    const parts: string[] = [];
    if (found.empty.length) parts.push(`no Cowrie JSON logs (${FOLDER_PATTERNS.join(', ')}) in ${found.empty.map(escapeControl).join(', ')}`);
    if (found.missing.length) parts.push(`no such file or folder: ${found.missing.map(escapeControl).join(', ')}`);
    if (found.linksLeaving.length) parts.push(`${found.linksLeaving.length} link(s) leading out of the folder not followed`);
    throw new UserError(`nothing to load: ${parts.join('; ')}`, 1);
  }
  for (const m of found.missing) logger.error(`No such file or folder: ${escapeControl(m)}`);
  for (const m of found.empty) logger.error(`No Cowrie JSON logs (${FOLDER_PATTERNS.join(', ')}) in ${escapeControl(m)}`);
  for (const l of found.linksLeaving) logger.warn(`Not following ${escapeControl(l)}: a link that leads out of the folder (name the file itself to load it)`);
  const cursors = await loadCursors(store.db);
  const byIdentity = new Map<string, CursorRow>();
  for (const c of cursors.values()) {
    if (!c.inode || !c.firstLineHash) continue;
    const key = identityKey(c.inode, c.firstLineHash);
    const other = byIdentity.get(key);
    // The same file seen under two names: everything before the larger offset is stored.
    if (!other || other.byteOffset < c.byteOffset) byIdentity.set(key, c);
  }

  const s: IngestSummary = {
    files: 0, filesFound: found.files.length, filesDone: 0, filesTotal: found.files.length, filesSkipped: 0, filesFailed: [], failures: [],
    missing, linksNotFollowed: found.linksLeaving,
    bytesRead: 0, bytesTotal: 0, eventsRead: 0, inserted: 0, duplicates: 0, deadLettered: 0, deadLetteredNew: 0, cleaned: 0, sessions: 0, newIps: 0,
    partialLines: 0, heldBack: { incomplete_line: 0, live_file: 0 }, eventsPerSecond: 0, elapsedSeconds: 0, currentFile: null, interrupted: false,
  };
  const sizes = await Promise.all(found.files.map((f) => fs.stat(f).then((x) => x.size, () => 0)));
  s.bytesTotal = sizes.reduce((a, b) => a + b, 0);
  const progress = () => {
    s.elapsedSeconds = (Date.now() - started) / 1000;
    opts.onProgress?.(s);
  };
  const fail = (f: FileFailure, log: boolean) => {
    // Error texts quote the file name too (Node's own messages, the reader's): escape all of it.
    const message = escapeControl(f.message);
    s.filesFailed.push(f.path);
    s.failures.push({ ...f, message });
    if (log) logger.error(message);
  };
  logger.info(`Loading ${fmt(found.files.length)} file(s) in ${opts.mode} mode into ${store.target.display}`);

  for (const path of found.files) {
    if (opts.signal?.aborted) { s.interrupted = true; break; }
    const shown = escapeControl(path);
    s.currentFile = path;
    let plan: FilePlan;
    try {
      plan = await planFile(path, opts.mode, cursors, byIdentity);
      const notJson = plan.skip || plan.startOffset > 0 ? null : await sniffNotJson(path);
      if (notJson) {
        // Named in the run's final error line; one line per file, not two.
        fail(notJson, false);
        s.bytesRead += plan.size;
        continue;
      }
    } catch (err) {
      fail({ path, reason: 'read_error', message: `Cannot read ${path}: ${errorMessage(err)}` }, true);
      continue;
    }
    if (plan.skip) {
      s.filesSkipped++;
      s.filesDone++;
      s.bytesRead += plan.size;
      logger.debug(`${shown}: unchanged since the last run`);
      progress();
      continue;
    }
    const bytesBefore = s.bytesRead;
    try {
      await loadFile(store, plan, { ...opts, batchSize, ingestId }, s, progress);
      s.filesDone++;
      s.files++;
      logger.info(`${shown}: done (${fmt(s.eventsRead)} events read so far)`);
    } catch (err) {
      if (err instanceof UserError && err.exitCode === 130) { s.interrupted = true; break; }
      fail({ path, reason: 'read_error', message: `Failed to load ${path}: ${errorMessage(err)} (what was read before the error is stored)` }, true);
    }
    s.bytesRead = bytesBefore + plan.size;
    progress();
  }
  s.currentFile = null;
  s.elapsedSeconds = (Date.now() - started) / 1000;
  s.eventsPerSecond = s.elapsedSeconds > 0 ? s.eventsRead / s.elapsedSeconds : 0;
  return s;
}

/** Lines from a reader in pieces of at most `max`; a read error ends the lines and is kept for later. */
export class LineSource {
  readonly #reader: LineReader;
  readonly #it: AsyncIterator<LineRecord[]>;
  #buf: LineRecord[] = [];
  #pos = 0;
  error: unknown = null;

  constructor(reader: LineReader) {
    this.#reader = reader;
    this.#it = reader.batches()[Symbol.asyncIterator]();
  }

  get summary(): ReadSummary | null {
    return this.#reader.summary;
  }

  /** Up to `max` records, or null at the end of the file (or at a read error). */
  async take(max: number): Promise<LineRecord[] | null> {
    while (this.#pos >= this.#buf.length) {
      if (this.error !== null) return null;
      try {
        const r = await this.#it.next();
        if (r.done) return null;
        this.#buf = r.value;
        this.#pos = 0;
      } catch (err) {
        this.error = err;
        return null;
      }
    }
    const end = Math.min(this.#buf.length, this.#pos + max);
    const out = this.#pos === 0 && end === this.#buf.length ? this.#buf : this.#buf.slice(this.#pos, end);
    this.#pos = end;
    return out;
  }
}

/** The parser's ISO text is already the stored form in the common case (microseconds, Z). */
function storedTimestamp(iso: string): string {
  return iso.length === 27 && iso.charCodeAt(26) === 90 && iso.charCodeAt(19) === 46 ? iso : isoMicros(iso);
}

export interface HeldLine { rec: LineRecord; reason: HeldBackReason }

/**
 * What to do with a file's last line when it has no newline. Complete JSON is loaded when the
 * plan says so; a fragment is held back while the file may grow and dead-lettered once it is
 * finished. Returns the parse result to store, or the reason it is held back.
 */
function unterminatedLine(rec: LineRecord, plan: FilePlan, sensor: string | undefined): ParsedEvent | DeadLetter | HeldBackReason {
  const parsed = rec.tooLong ? null : parseLine(rec.line, { source: plan.path, offset: rec.offset, sensorOverride: sensor });
  const fragment = parsed === null || (isDeadLetter(parsed) && parsed.reason === 'invalid_json');
  if (!fragment) return plan.loadCompleteTail ? parsed : 'live_file';
  if (!plan.finished) return 'incomplete_line';
  const d = parsed ?? tooLongDeadLetter(rec, plan.path);
  return { ...d, reason: 'truncated_line', detail: `last line of a finished file has no newline and is not complete JSON (${rec.length} bytes)` };
}

/** Parses a piece of lines into events and dead letters; returns the held-back last line, if any. */
export function parseRecords(
  recs: LineRecord[], plan: FilePlan, sensor: string | undefined, events: Row[], deadLetters: DeadLetterRow[], s: IngestSummary,
): HeldLine | null {
  const path = plan.path;
  let held: HeldLine | null = null;
  for (const rec of recs) {
    let parsed: ParsedEvent | DeadLetter;
    if (rec.partial) {
      const r = unterminatedLine(rec, plan, sensor);
      if (typeof r === 'string') { held = { rec, reason: r }; continue; }
      parsed = r;
    } else {
      parsed = rec.tooLong ? tooLongDeadLetter(rec, path) : parseLine(rec.line, { source: path, offset: rec.offset, sensorOverride: sensor });
    }
    if (isDeadLetter(parsed)) {
      deadLetters.push({ source: path, sourceOffset: parsed.offset, reason: parsed.reason, detail: parsed.detail, rawLine: parsed.rawLine, rawHash: parsed.rawHash });
      continue;
    }
    if (parsed.cleaned.length > 0) s.cleaned++;
    events.push({
      source: path, sourceOffset: rec.offset, sourceInode: plan.inode, sourceGeneration: plan.generation,
      sensor: parsed.sensor, sessionId: parsed.sessionId, eventType: parsed.eventType, eventTimestamp: storedTimestamp(parsed.timestamp),
      srcIp: parsed.srcIp, payload: parsed.payload, payloadHash: parsed.payloadHash, parsed,
    });
  }
  return held;
}

async function loadFile(
  store: Store,
  plan: FilePlan,
  opts: IngestOptions & { batchSize: number; ingestId: string },
  s: IngestSummary,
  progress: () => void,
): Promise<void> {
  const { path } = plan;
  const src = new LineSource(readLines(path, { startOffset: plan.startOffset, yieldPartial: true }));
  const bytesAtStart = s.bytesRead;
  let lastEnd = plan.startOffset;
  let finished = false;
  let interrupted = false;
  let shrunk = false;
  let held: HeldLine | null = null;
  const newSummary = () => new SummaryBuilder();

  while (!finished && !interrupted) {
    const r = await writeIngestTransaction<Row>(store.db, { ingestId: opts.ingestId, summary: newSummary }, async (w) => {
      let n = 0;
      // One write in flight while the next piece is read and parsed (the database works meanwhile).
      let pending: Promise<unknown> | null = null;
      while (n < opts.batchSize) {
        if (opts.signal?.aborted) { interrupted = true; break; }
        const recs = await src.take(Math.min(WRITE_CHUNK, opts.batchSize - n));
        if (recs === null) { finished = true; break; }
        const events: Row[] = [];
        const deadLetters: DeadLetterRow[] = [];
        held = parseRecords(recs, plan, opts.sensor, events, deadLetters, s);
        if (pending) await pending;
        pending = w.write(events, deadLetters);
        pending.catch(() => {}); // awaited below; this only keeps it from counting as unhandled meanwhile
        n += recs.length;
        // A held-back line is always the file's last: the cursor stays at its start.
        lastEnd = held ? held.rec.offset : recs[recs.length - 1].end;
        s.eventsRead += recs.length - (held ? 1 : 0);
        s.deadLettered += deadLetters.length;
        s.bytesRead = bytesAtStart + Math.min(plan.size, lastEnd - plan.startOffset);
        progress();
      }
      if (pending) await pending;
      if (finished && src.error === null && src.summary?.shrunk) {
        shrunk = true;
        return null;
      }
      plan.firstLineHash ??= lastEnd > 0 ? await hashFirstLine(path) : null;
      // Compressed files are finished once read; plain files may still grow, so the size is kept
      // for the unchanged-file fast path only when the file was read to its end.
      const complete = finished && src.error === null && src.summary !== null && held === null;
      return { source: path, inode: plan.inode, generation: plan.generation, byteOffset: lastEnd, firstLineHash: plan.firstLineHash, sourceSize: complete ? plan.size : null };
    });
    s.inserted += r.inserted;
    s.duplicates += r.duplicates;
    s.deadLetteredNew += r.deadLettered;
    s.sessions += r.newSessions;
    s.newIps += r.newIps;
    progress();
  }
  if (shrunk) {
    // A compressed file shorter than its cursor: replaced; read it again from the start.
    opts.logger.debug(`${escapeControl(path)}: shorter than at the last run; reading it again from the start`);
    await loadFile(store, { ...plan, startOffset: 0, generation: plan.generation + 1, firstLineHash: await hashFirstLine(path) }, opts, s, progress);
    return;
  }
  if (src.error !== null) throw src.error;
  const last = held as HeldLine | null; // assigned inside the transaction callback
  if (last) {
    s.partialLines++;
    s.heldBack[last.reason]++;
    const why = last.reason === 'incomplete_line' ? 'is not complete JSON yet' : `has no newline and the file changed in the last ${LIVE_FILE_QUIET_MS / 60_000} minutes`;
    opts.logger.info(`${escapeControl(path)}: last line (${fmt(last.rec.length)} bytes) ${why}; held back for a later run`);
  }
  if (interrupted) throw new UserError('interrupted', 130);
}
