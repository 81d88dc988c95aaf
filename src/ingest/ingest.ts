import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { UserError, errorMessage } from '../errors.js';
import { fmt, type Logger } from '../log.js';
import { loadCursors, writeIngestBatch, type CursorRow, type DeadLetterRow, type EventRow } from '../store/ingest-repo.js';
import type { Store } from '../store/store.js';
import { isoMicros } from '../store/time.js';
import { findLogFiles, hashFirstLine, readLines, type Compression } from './reader.js';
import { isDeadLetter, parseLine, tooLongDeadLetter } from './parse.js';
import { summarise, type SummarisableEvent } from './summarise.js';

export interface IngestOptions {
  paths: string[];
  /** bulk: read every file whole; delta: only what was appended since the last run. */
  mode: 'bulk' | 'delta';
  sensor?: string;
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
  files: number;
  filesSkipped: number;
  filesFailed: string[];
  missing: string[];
  duplicates: number;
  sessions: number;
  newIps: number;
  partialLines: number;
  eventsPerSecond: number;
  interrupted: boolean;
}

interface FilePlan {
  path: string;
  inode: string;
  size: number;
  compression: Compression | null;
  startOffset: number;
  generation: number;
  firstLineHash: string | null;
  skip: boolean;
}

async function planFile(path: string, mode: IngestOptions['mode'], cursors: Map<string, CursorRow>, byIdentity: Map<string, CursorRow>): Promise<FilePlan> {
  const st = await fs.stat(path);
  const inode = `${st.dev}:${st.ino}`;
  const prev = cursors.get(path);
  const generation = prev ? prev.generation : 0;
  const base = { path, inode, size: st.size, compression: null, generation, firstLineHash: null, skip: false, startOffset: 0 };
  if (mode === 'bulk') return base;
  // Cheap check first: a file whose size and inode are unchanged since it was read to the end has nothing new.
  if (prev && prev.inode === inode && prev.sourceSize === st.size && prev.byteOffset > 0) {
    return { ...base, firstLineHash: prev.firstLineHash, startOffset: prev.byteOffset, skip: true };
  }
  const firstLineHash = await hashFirstLine(path);
  if (prev && prev.inode === inode && prev.firstLineHash === firstLineHash) {
    return { ...base, firstLineHash, startOffset: prev.byteOffset };
  }
  // Rotation by rename (cowrie.json → cowrie.json.1): the same inode and first line under a new name.
  const moved = byIdentity.get(`${inode}\u0001${firstLineHash}`);
  if (!prev && moved) return { ...base, firstLineHash, startOffset: moved.byteOffset };
  // New file, or replaced/truncated content at this path: read from the start, next generation.
  return { ...base, firstLineHash, generation: prev ? prev.generation + 1 : 0 };
}

/** Load Cowrie JSON logs; every committed batch carries its cursor, so a killed run resumes exactly. */
export async function ingest(store: Store, opts: IngestOptions): Promise<IngestSummary> {
  const started = Date.now();
  const batchSize = opts.batchSize ?? 5000;
  const { logger } = opts;
  const ingestId = crypto.randomUUID();
  const found = await findLogFiles(opts.paths);
  for (const m of found.missing) logger.error(`No such file or folder: ${m}`);
  const cursors = await loadCursors(store.db);
  const byIdentity = new Map<string, CursorRow>();
  for (const c of cursors.values()) if (c.inode && c.firstLineHash) byIdentity.set(`${c.inode}\u0001${c.firstLineHash}`, c);

  const s: IngestSummary = {
    files: found.files.length, filesDone: 0, filesTotal: found.files.length, filesSkipped: 0, filesFailed: [], missing: found.missing,
    bytesRead: 0, bytesTotal: 0, eventsRead: 0, inserted: 0, duplicates: 0, deadLettered: 0, sessions: 0, newIps: 0,
    partialLines: 0, eventsPerSecond: 0, elapsedSeconds: 0, currentFile: null, interrupted: false,
  };
  const sizes = await Promise.all(found.files.map((f) => fs.stat(f).then((x) => x.size, () => 0)));
  s.bytesTotal = sizes.reduce((a, b) => a + b, 0);
  const progress = () => {
    s.elapsedSeconds = (Date.now() - started) / 1000;
    opts.onProgress?.(s);
  };
  logger.info(`Loading ${fmt(found.files.length)} file(s) in ${opts.mode} mode into ${store.target.display}`);

  for (let i = 0; i < found.files.length; i++) {
    if (opts.signal?.aborted) { s.interrupted = true; break; }
    const path = found.files[i];
    s.currentFile = path;
    let plan: FilePlan;
    try {
      plan = await planFile(path, opts.mode, cursors, byIdentity);
    } catch (err) {
      s.filesFailed.push(path);
      logger.error(`Cannot read ${path}: ${errorMessage(err)}`);
      continue;
    }
    if (plan.skip) {
      s.filesSkipped++;
      s.filesDone++;
      s.bytesRead += plan.size;
      logger.debug(`${path}: unchanged since the last run`);
      progress();
      continue;
    }
    try {
      await loadFile(store, plan, { ...opts, batchSize, ingestId }, s, progress);
      s.filesDone++;
    } catch (err) {
      if (err instanceof UserError && err.exitCode === 130) { s.interrupted = true; break; }
      s.filesFailed.push(path);
      logger.error(`Failed to load ${path}: ${errorMessage(err)} (batches committed before the error are kept)`);
    }
    progress();
  }
  s.currentFile = null;
  s.elapsedSeconds = (Date.now() - started) / 1000;
  s.eventsPerSecond = s.elapsedSeconds > 0 ? s.eventsRead / s.elapsedSeconds : 0;
  return s;
}

async function loadFile(
  store: Store,
  plan: FilePlan,
  opts: IngestOptions & { batchSize: number; ingestId: string },
  s: IngestSummary,
  progress: () => void,
): Promise<void> {
  const { path } = plan;
  const reader = readLines(path, { startOffset: plan.startOffset });
  let events: Array<EventRow & SummarisableEvent> = [];
  let deadLetters: DeadLetterRow[] = [];
  let lastEnd = plan.startOffset;
  let bytesAtStart = s.bytesRead;

  const flush = async (final: boolean, sourceSize: number | null) => {
    if (!events.length && !deadLetters.length && !final) return;
    const cursor: CursorRow = {
      source: path, inode: plan.inode, generation: plan.generation, byteOffset: lastEnd,
      firstLineHash: plan.firstLineHash ?? (lastEnd > 0 ? await hashFirstLine(path) : null), sourceSize,
    };
    plan.firstLineHash = cursor.firstLineHash;
    const r = await writeIngestBatch(store.db, { events, deadLetters, cursor, ingestId: opts.ingestId }, summarise);
    s.inserted += r.inserted;
    s.duplicates += r.duplicates;
    s.deadLettered += deadLetters.length;
    s.sessions += r.newSessions;
    s.newIps += r.newIps;
    events = [];
    deadLetters = [];
    progress();
  };

  for await (const chunk of reader.batches()) {
    for (const rec of chunk) {
      lastEnd = rec.end;
      s.eventsRead++;
      const parsed = rec.tooLong ? tooLongDeadLetter(rec, path) : parseLine(rec.line, { source: path, offset: rec.offset, sensorOverride: opts.sensor });
      if (isDeadLetter(parsed)) {
        deadLetters.push({ source: path, sourceOffset: parsed.offset, reason: parsed.reason, detail: parsed.detail, rawLine: parsed.rawLine, rawHash: parsed.rawHash });
        continue;
      }
      const ts = isoMicros(parsed.timestamp);
      events.push({
        source: path, sourceOffset: rec.offset, sourceInode: plan.inode, sourceGeneration: plan.generation,
        sensor: parsed.sensor, sessionId: parsed.sessionId, eventType: parsed.eventType, eventTimestamp: ts,
        srcIp: parsed.srcIp, payload: parsed.payload, payloadHash: parsed.payloadHash, parsed,
      });
    }
    s.bytesRead = bytesAtStart + (lastEnd - plan.startOffset);
    if (events.length + deadLetters.length >= opts.batchSize) {
      if (opts.signal?.aborted) throw new UserError('interrupted', 130);
      await flush(false, null);
    }
  }
  const summary = reader.summary;
  if (summary?.partialOffset !== null && summary?.partialOffset !== undefined) {
    s.partialLines++;
    opts.logger.debug(`${path}: last line is incomplete (${summary.partialBytes} bytes), left for the next run`);
  }
  // Compressed files are finished once read; plain files may still grow, so size is recorded for the fast path only when fully read.
  const complete = summary ? summary.partialOffset === null : true;
  await flush(true, complete ? plan.size : null);
  s.bytesRead = bytesAtStart + plan.size;
  if (opts.signal?.aborted) throw new UserError('interrupted', 130);
}
