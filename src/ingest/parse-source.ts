/**
 * Reading and parsing one file's lines into write-ready chunks, on a worker thread (parse-worker.ts)
 * or in this thread. The writer (main thread) and the parser thus use both cores; a bounded number
 * of chunks in flight keeps memory flat whatever the file size.
 */
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../errors.js';
import type { DeadLetterRow, EventRow } from '../store/ingest-repo.js';
import { isoMicros } from '../store/time.js';
import type { HeldBackReason } from './file-kind.js';
import { isDeadLetter, parseLine, tooLongDeadLetter, type DeadLetter, type ParsedEvent } from './parse.js';
import { readLines, type LineReader, type LineRecord, type ReadSummary } from './reader.js';
import type { SummarisableEvent, SummaryFields } from './summarise.js';

/**
 * Lines parsed and written per statement. Small enough that a chunk's objects die young (peak RSS
 * stays low), large enough that a PostgreSQL round trip carries many rows.
 */
export const WRITE_CHUNK = 1000;
/** A chunk also ends after this many bytes of lines, so a few huge lines cannot fill memory. */
const CHUNK_BYTES = 4 * 2 ** 20;
/**
 * Parsed chunks that may wait for the writer: the parser's lead, and the bound on its memory
 * (8 × ≤ 1000 lines ≈ 8 MB per file being loaded). It must outlast a COMMIT, which blocks the writer's thread.
 */
export const CHUNKS_IN_FLIGHT = 8;

/** What the parser needs to know about a file it reads. */
export interface FileJob {
  path: string;
  startOffset: number;
  /** Nothing will be appended any more (a fragment at the end is a dead letter). */
  finished: boolean;
  /** A last line without a newline that is complete JSON is loaded. */
  loadCompleteTail: boolean;
  sensor?: string;
  /** Lines per transaction: chunks never straddle a transaction boundary. */
  batchSize: number;
}

/** One event as the writer needs it: the stored columns and the few fields the summaries read. */
export interface WireEvent extends SummarisableEvent, EventRow {
  parsed: SummaryFields;
}

export interface HeldLine { offset: number; length: number; reason: HeldBackReason }

export interface ParsedChunk {
  /** Lines this chunk covers (a held-back line included). */
  lines: number;
  events: WireEvent[];
  deadLetters: DeadLetterRow[];
  /** The file's last line, left for a later run; always the chunk's last line. */
  held: HeldLine | null;
  /** Where the next line starts (a held line's start when there is one). */
  lastEnd: number;
  cleaned: number;
}

export interface FileEnd {
  /** The reader reached the end of the file (no read error). */
  completed: boolean;
  /** A compressed file shorter than its cursor. */
  shrunk: boolean;
  /** A read error; what came before it was delivered. */
  error: string | null;
}

/** One file's chunks in order; null at its end, then `end` says how it ended. */
export interface ChunkSource {
  next(): Promise<ParsedChunk | null>;
  readonly end: FileEnd | null;
  /** Stop reading (interrupted, or the writer failed). */
  cancel(): void;
}

export interface Parser {
  open(job: FileJob): ChunkSource;
  close(): Promise<void>;
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

  /** Up to `max` records (and about CHUNK_BYTES), or null at the end of the file (or at a read error). */
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
    let end = this.#pos;
    let bytes = 0;
    const limit = Math.min(this.#buf.length, this.#pos + max);
    while (end < limit && (end === this.#pos || bytes < CHUNK_BYTES)) bytes += this.#buf[end++].line.length;
    const out = this.#pos === 0 && end === this.#buf.length ? this.#buf : this.#buf.slice(this.#pos, end);
    this.#pos = end;
    return out;
  }
}

/** The parser's ISO text is already the stored form in the common case (microseconds, Z). */
function storedTimestamp(iso: string): string {
  return iso.length === 27 && iso.charCodeAt(26) === 90 && iso.charCodeAt(19) === 46 ? iso : isoMicros(iso);
}

/**
 * What to do with a file's last line when it has no newline. Complete JSON is loaded when the
 * job says so; a fragment is held back while the file may grow and dead-lettered once it is
 * finished. Returns the parse result to store, or the reason it is held back.
 */
function unterminatedLine(rec: LineRecord, job: FileJob): ParsedEvent | DeadLetter | HeldBackReason {
  const parsed = rec.tooLong ? null : parseLine(rec.line, { source: job.path, offset: rec.offset, sensorOverride: job.sensor });
  const fragment = parsed === null || (isDeadLetter(parsed) && parsed.reason === 'invalid_json');
  if (!fragment) return job.loadCompleteTail ? parsed : 'live_file';
  if (!job.finished) return 'incomplete_line';
  const d = parsed ?? tooLongDeadLetter(rec, job.path);
  return { ...d, reason: 'truncated_line', detail: `last line of a finished file has no newline and is not complete JSON (${rec.length} bytes)` };
}

/** Parses a piece of lines into events and dead letters. */
export function parseChunk(recs: LineRecord[], job: FileJob): ParsedChunk {
  const path = job.path;
  const events: WireEvent[] = [];
  const deadLetters: DeadLetterRow[] = [];
  let held: HeldLine | null = null;
  let cleaned = 0;
  for (const rec of recs) {
    let parsed: ParsedEvent | DeadLetter;
    if (rec.partial) {
      const r = unterminatedLine(rec, job);
      if (typeof r === 'string') { held = { offset: rec.offset, length: rec.length, reason: r }; continue; }
      parsed = r;
    } else {
      parsed = rec.tooLong ? tooLongDeadLetter(rec, path) : parseLine(rec.line, { source: path, offset: rec.offset, sensorOverride: job.sensor });
    }
    if (isDeadLetter(parsed)) {
      deadLetters.push({ source: path, sourceOffset: parsed.offset, reason: parsed.reason, detail: parsed.detail, rawLine: parsed.rawLine, rawHash: parsed.rawHash });
      continue;
    }
    if (parsed.cleaned.length > 0) cleaned++;
    const p = parsed;
    events.push({
      sourceOffset: rec.offset, sensor: p.sensor, sessionId: p.sessionId, eventType: p.eventType, eventTimestamp: storedTimestamp(p.timestamp),
      srcIp: p.srcIp, payload: p.payload, payloadHash: p.payloadHash,
      // Only what the summaries read crosses to the writer.
      parsed: {
        loginSuccess: p.loginSuccess, loginFailed: p.loginFailed, shasum: p.shasum, url: p.url, filename: p.filename,
        version: p.version, hassh: p.hassh, protocol: p.protocol, durationSeconds: p.durationSeconds,
        username: p.username, password: p.password, input: p.input,
      },
    });
  }
  // A held-back line is always the file's last: the cursor stays at its start.
  const lastEnd = held ? held.offset : recs[recs.length - 1].end;
  return { lines: recs.length, events, deadLetters, held, lastEnd, cleaned };
}

/**
 * A job's file as parsed chunks, then how it ended. Shared by the worker and the in-thread
 * parser, so both cut the same chunks: never across a transaction boundary (`batchSize` lines).
 */
export async function* fileChunks(job: FileJob): AsyncGenerator<ParsedChunk, FileEnd> {
  const src = new LineSource(readLines(job.path, { startOffset: job.startOffset, yieldPartial: true }));
  let inBatch = 0;
  for (;;) {
    const recs = await src.take(Math.min(WRITE_CHUNK, job.batchSize - inBatch));
    if (recs === null) break;
    inBatch = (inBatch + recs.length) % job.batchSize;
    yield parseChunk(recs, job);
  }
  return { completed: src.error === null && src.summary !== null, shrunk: src.summary?.shrunk ?? false, error: src.error === null ? null : errorMessage(src.error) };
}

/** The same work in this thread: one chunk parsed when the writer asks for it. */
class InlineParser implements Parser {
  open(job: FileJob): ChunkSource {
    const it = fileChunks(job);
    const source = {
      end: null as FileEnd | null,
      next: async (): Promise<ParsedChunk | null> => {
        if (source.end !== null) return null;
        const r = await it.next();
        if (!r.done) return r.value;
        source.end = r.value;
        return null;
      },
      cancel: () => { void it.return({ completed: false, shrunk: false, error: null }); },
    };
    return source;
  }

  async close(): Promise<void> {}
}

type FromWorker =
  | { type: 'chunk'; id: number; chunk: ParsedChunk }
  | { type: 'end'; id: number; end: FileEnd }
  | { type: 'failed'; id: number; message: string };

/**
 * Parsing on a worker thread; one worker serves the whole run and every file being loaded (a
 * second worker gains nothing on two cores and adds a heap).
 */
class WorkerParser implements Parser {
  readonly #worker: Worker;
  #nextId = 0;
  readonly #jobs = new Map<number, { onMessage(m: FromWorker): void; onError(err: unknown): void }>();

  constructor(script: URL) {
    this.#worker = new Worker(script);
    this.#worker.on('message', (m: FromWorker) => this.#jobs.get(m.id)?.onMessage(m));
    this.#worker.on('error', (err) => { for (const j of this.#jobs.values()) j.onError(err); });
  }

  open(job: FileJob): ChunkSource {
    const id = ++this.#nextId;
    const queue: ParsedChunk[] = [];
    let waiter: { resolve(c: ParsedChunk | null): void; reject(e: unknown): void } | null = null;
    let failure: unknown = null;
    const worker = this.#worker;
    const source = {
      end: null as FileEnd | null,
      next: () => new Promise<ParsedChunk | null>((resolve, reject) => {
        const c = queue.shift();
        if (c !== undefined) {
          // Taking a chunk lets the worker parse one more.
          worker.postMessage({ type: 'credit', id });
          resolve(c);
        } else if (failure !== null) reject(failure);
        else if (source.end !== null) resolve(null);
        else waiter = { resolve, reject };
      }),
      cancel: () => { this.#jobs.delete(id); worker.postMessage({ type: 'cancel', id }); },
    };
    const settle = () => {
      const w = waiter;
      if (w === null) return;
      waiter = null;
      void source.next().then(w.resolve, w.reject);
    };
    this.#jobs.set(id, {
      onMessage: (m) => {
        if (m.type === 'chunk') queue.push(m.chunk);
        else {
          if (m.type === 'end') source.end = m.end;
          else failure = new Error(m.message);
          this.#jobs.delete(id);
        }
        settle();
      },
      onError: (err) => { failure = err; settle(); },
    });
    worker.postMessage({ type: 'job', id, job, credits: CHUNKS_IN_FLIGHT });
    return source;
  }

  async close(): Promise<void> {
    this.#jobs.clear();
    await this.#worker.terminate();
  }
}

/** The compiled worker beside this module; absent when the sources run untranspiled (tests): parse in this thread then. */
function workerScript(): URL | null {
  if (!import.meta.url.endsWith('.js')) return null;
  const url = new URL('./parse-worker.js', import.meta.url);
  return fs.existsSync(fileURLToPath(url)) ? url : null;
}

/** A worker thread when one can be started (`inline` forces this thread). */
export function createParser(inline = false): Parser {
  const script = inline ? null : workerScript();
  return script ? new WorkerParser(script) : new InlineParser();
}
