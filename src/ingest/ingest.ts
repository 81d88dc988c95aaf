import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { UserError, errorMessage } from '../errors.js';
import { fmt, type Logger } from '../log.js';
import { finishFastLoad, incompleteLoadMessage, loadCursors, startFastLoad, writeIngestTransaction, type CursorRow } from '../store/ingest-repo.js';
import type { Store } from '../store/store.js';
import { Mutex } from '../store/mutex.js';
import { escapeControl } from '../text.js';
import { detectCompression, findLogFiles, FOLDER_PATTERNS, hashFirstLine } from './reader.js';
import { isFinished, LIVE_FILE_QUIET_MS, sniffNotJson, type FileFailure, type HeldBackReason } from './file-kind.js';
import { createParser, type HeldLine, type Parser, type WireEvent } from './parse-source.js';
import { SummaryBuilder } from './summarise.js';

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
  /**
   * A first load into an empty database (bulk only): the journal off and raw_events' unique key
   * built after the load. Not crash-safe: until it ends the database is marked incomplete.
   */
  fast?: boolean;
  /** Parse in this thread instead of a worker thread (the worker is used when its compiled script exists). */
  parseInThread?: boolean;
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
  logger.info(`Loading ${fmt(found.files.length)} file(s) in ${opts.mode} mode${opts.fast ? ' (--fast)' : ''} into ${store.target.display}`);
  if (opts.fast) {
    if (opts.mode !== 'bulk') throw new UserError('--fast is for a first bulk load only', 2);
    await startFastLoad(store.db, store.target.display);
  }

  // Files load in lanes, one per write connection (two on PostgreSQL), each file in order on its lane.
  const lanes = Math.max(1, Math.min(store.db.writeConnections, found.files.length));
  const finishLock = lanes > 1 ? new Mutex() : undefined;
  let next = 0;
  // One parser for all lanes, started on the first file that is read: a delta run over unchanged files needs none.
  let parser: Parser | null = null;
  const lane = async (): Promise<void> => {
    while (next < found.files.length && !s.interrupted) {
      const path = found.files[next++];
      if (opts.signal?.aborted) { s.interrupted = true; return; }
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
      const bytes = { counted: 0 };
      try {
        parser ??= createParser(opts.parseInThread);
        await loadFile(store, plan, { ...opts, batchSize, ingestId, parser, finishLock }, s, bytes, progress);
        s.filesDone++;
        s.files++;
        logger.info(`${shown}: done (${fmt(s.eventsRead)} events read so far)`);
      } catch (err) {
        if (err instanceof UserError && err.exitCode === 130) { s.interrupted = true; return; }
        fail({ path, reason: 'read_error', message: `Failed to load ${path}: ${errorMessage(err)} (what was read before the error is stored)` }, true);
      }
      s.bytesRead += plan.size - bytes.counted;
      progress();
    }
  };
  try {
    await Promise.all(Array.from({ length: lanes }, lane));
  } finally {
    await (parser as Parser | null)?.close(); // assigned inside the lanes
  }
  // Lanes finish files out of order: report failures in the order the files were found.
  const order = new Map(found.files.map((f, i) => [f, i]));
  s.failures.sort((x, y) => (order.get(x.path) ?? 0) - (order.get(y.path) ?? 0));
  s.filesFailed = s.failures.map((f) => f.path);
  if (opts.fast) {
    if (s.interrupted) throw new UserError(`interrupted: ${incompleteLoadMessage(store.target.display)}`, 130);
    // Copies of one event (the same log under two names) all went in; the key is built now.
    const copies = await finishFastLoad(store.db);
    s.inserted -= copies;
    s.duplicates += copies;
  }
  s.currentFile = null;
  s.elapsedSeconds = (Date.now() - started) / 1000;
  s.eventsPerSecond = s.elapsedSeconds > 0 ? s.eventsRead / s.elapsedSeconds : 0;
  return s;
}

async function loadFile(
  store: Store,
  plan: FilePlan,
  opts: IngestOptions & { batchSize: number; ingestId: string; parser: Parser; finishLock?: Mutex },
  s: IngestSummary,
  /** This file's bytes already added to s.bytesRead. */
  bytes: { counted: number },
  progress: () => void,
): Promise<void> {
  const { path } = plan;
  const src = opts.parser.open({
    path, startOffset: plan.startOffset, finished: plan.finished, loadCompleteTail: plan.loadCompleteTail, sensor: opts.sensor, batchSize: opts.batchSize,
  });
  const file = { source: path, sourceInode: plan.inode, sourceGeneration: plan.generation };
  let lastEnd = plan.startOffset;
  let finished = false;
  let interrupted = false;
  let shrunk = false;
  let held: HeldLine | null = null;
  const newSummary = () => new SummaryBuilder();

  try {
    while (!finished && !interrupted) {
      const r = await writeIngestTransaction<WireEvent>(store.db, { ingestId: opts.ingestId, summary: newSummary, dedupe: !opts.fast, finishLock: opts.finishLock }, async (w) => {
        let n = 0;
        // One write in flight while the parser works on the next chunks (on its own thread when it can).
        let pending: Promise<unknown> | null = null;
        while (n < opts.batchSize) {
          if (opts.signal?.aborted) { interrupted = true; break; }
          const chunk = await src.next();
          if (chunk === null) { finished = true; break; }
          held = chunk.held;
          if (pending) await pending;
          pending = w.write(file, chunk.events, chunk.deadLetters);
          pending.catch(() => {}); // awaited below; this only keeps it from counting as unhandled meanwhile
          n += chunk.lines;
          lastEnd = chunk.lastEnd;
          s.eventsRead += chunk.lines - (held ? 1 : 0);
          s.deadLettered += chunk.deadLetters.length;
          s.cleaned += chunk.cleaned;
          const counted = Math.max(bytes.counted, Math.min(plan.size, lastEnd - plan.startOffset));
          s.bytesRead += counted - bytes.counted;
          bytes.counted = counted;
          progress();
        }
        if (pending) await pending;
        const end = src.end;
        if (finished && end !== null && end.error === null && end.shrunk) {
          shrunk = true;
          return null;
        }
        plan.firstLineHash ??= lastEnd > 0 ? await hashFirstLine(path) : null;
        // Compressed files are finished once read; plain files may still grow, so the size is kept
        // for the unchanged-file fast path only when the file was read to its end.
        const complete = finished && end !== null && end.completed && held === null;
        return { source: path, inode: plan.inode, generation: plan.generation, byteOffset: lastEnd, firstLineHash: plan.firstLineHash, sourceSize: complete ? plan.size : null };
      });
      s.inserted += r.inserted;
      s.duplicates += r.duplicates;
      s.deadLetteredNew += r.deadLettered;
      s.sessions += r.newSessions;
      s.newIps += r.newIps;
      progress();
    }
  } finally {
    if (!finished) src.cancel();
  }
  if (shrunk) {
    // A compressed file shorter than its cursor: replaced; read it again from the start.
    opts.logger.debug(`${escapeControl(path)}: shorter than at the last run; reading it again from the start`);
    await loadFile(store, { ...plan, startOffset: 0, generation: plan.generation + 1, firstLineHash: await hashFirstLine(path) }, opts, s, bytes, progress);
    return;
  }
  const readError = src.end?.error ?? null;
  if (readError !== null) throw new Error(readError);
  const last = held as HeldLine | null; // assigned inside the transaction callback
  if (last) {
    s.partialLines++;
    s.heldBack[last.reason]++;
    const why = last.reason === 'incomplete_line' ? 'is not complete JSON yet' : `has no newline and the file changed in the last ${LIVE_FILE_QUIET_MS / 60_000} minutes`;
    opts.logger.info(`${escapeControl(path)}: last line (${fmt(last.length)} bytes) ${why}; held back for a later run`);
  }
  if (interrupted) throw new UserError('interrupted', 130);
}
