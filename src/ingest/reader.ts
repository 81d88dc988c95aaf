/**
 * Reading Cowrie log files line by line: plain, gzip or bzip2 (detected by magic bytes, never
 * by name), with byte offsets in the decompressed stream so a run can resume where the last
 * one stopped. A half-written last line is never yielded; its offset is reported instead.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { glob, isDynamicPattern } from 'tinyglobby';
import bz2 from 'unbzip2-stream';

export type Compression = 'none' | 'gzip' | 'bzip2';

export interface ReadLinesOptions {
  /** Byte offset (in the decompressed stream) of the first line to read; must be a line start. */
  startOffset?: number;
  /** Longer lines are yielded as too-long markers with only a prefix kept. Default 16 MiB. */
  maxLineBytes?: number;
  /** Also yield a final line that has no newline, flagged `partial` (the caller decides). Default false. */
  yieldPartial?: boolean;
}

export interface LineRecord {
  /** The line without its newline; for a too-long line only the first TOO_LONG_PREFIX_BYTES bytes. */
  line: Buffer;
  /** Byte offset of the line start in the (decompressed) stream. */
  offset: number;
  /** Offset just past the newline: where the next line starts. */
  end: number;
  /** Full length of the line in bytes, newline excluded. */
  length: number;
  tooLong: boolean;
  /** The file's last line, with no newline after it (only with `yieldPartial`). */
  partial?: boolean;
}

export interface ReadSummary {
  compression: Compression;
  startOffset: number;
  /** Offset just past the last complete line read: resume from here next time. */
  endOffset: number;
  /** Start of a trailing line with no newline (not yielded), or null. */
  partialOffset: number | null;
  partialBytes: number;
  /** Decompressed size seen; the file's total size when read to the end. */
  totalBytes: number;
  lines: number;
  blankLines: number;
  tooLongLines: number;
  /** The stream is shorter than startOffset: the file was truncated or replaced. */
  shrunk: boolean;
}

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;
export const TOO_LONG_PREFIX_BYTES = 4096;
const PLAIN_CHUNK = 1024 * 1024;

export async function detectCompression(path: string): Promise<Compression> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'gzip';
    // 'BZh' then the block size digit '1'..'9'.
    if (bytesRead >= 4 && buf[0] === 0x42 && buf[1] === 0x5a && buf[2] === 0x68 && buf[3] >= 0x31 && buf[3] <= 0x39) {
      return 'bzip2';
    }
    return 'none';
  } finally {
    await fh.close();
  }
}

/** The decompressed byte stream; compressed errors are re-thrown naming the file. */
function openStream(path: string, compression: Compression, startOffset: number): Readable {
  if (compression === 'none') return createReadStream(path, { start: startOffset, highWaterMark: PLAIN_CHUNK });
  const src = createReadStream(path, { highWaterMark: 256 * 1024 });
  const out = new PassThrough({ highWaterMark: PLAIN_CHUNK });
  const label = compression === 'gzip' ? 'gzip' : 'bzip2';
  const fail = (err: unknown): void => {
    const msg = err instanceof Error ? err.message : String(err);
    out.destroy(new Error(`Corrupt or truncated ${label} file ${path}: ${msg}`));
  };
  src.on('error', (err) => out.destroy(err));
  if (compression === 'gzip') {
    const gunzip = createGunzip();
    gunzip.on('error', fail);
    src.pipe(gunzip).pipe(out);
    out.on('close', () => { src.destroy(); gunzip.destroy(); });
  } else if (bzip2Binary()) {
    // Measured: the system bzip2 decompresses ~10x faster than the pure-JS stream; same output.
    src.destroy();
    const child = spawn(bzip2Binary()!, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString().slice(0, 500); });
    child.stdout.pipe(out, { end: false });
    child.on('error', fail);
    child.on('close', (code) => {
      if (code === 0) out.end();
      else fail(new Error(stderr.trim().split('\n').pop() || `bzip2 exited with code ${code}`));
    });
    out.on('close', () => { if (child.exitCode === null) child.kill(); });
  } else {
    const dec = bz2();
    dec.on('error', fail);
    src.pipe(dec).pipe(out);
    out.on('close', () => { src.destroy(); dec.destroy(); });
  }
  return out;
}

let bzip2Path: string | null | undefined;
/** The system bzip2, when installed (looked up once); otherwise the pure-JS decoder is used. */
function bzip2Binary(): string | null {
  if (bzip2Path === undefined) {
    bzip2Path = null;
    for (const dir of (process.env.PATH ?? '').split(':')) {
      if (dir && existsSync(join(dir, 'bzip2'))) { bzip2Path = join(dir, 'bzip2'); break; }
    }
  }
  return bzip2Path;
}

/** An async iterable of lines; `summary` is filled in once iteration has finished. */
export class LineReader implements AsyncIterable<LineRecord> {
  summary: ReadSummary | null = null;
  readonly path: string;
  readonly #opts: ReadLinesOptions;

  constructor(path: string, opts: ReadLinesOptions = {}) {
    this.path = path;
    this.#opts = opts;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LineRecord> {
    for await (const batch of this.batches()) {
      for (const rec of batch) yield rec;
    }
  }

  /** Lines grouped per read chunk: fewer promise round trips for callers that want speed. */
  async *batches(): AsyncGenerator<LineRecord[]> {
    const startOffset = this.#opts.startOffset ?? 0;
    const max = this.#opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const compression = await detectCompression(this.path);
    const s: ReadSummary = {
      compression, startOffset, endOffset: startOffset, partialOffset: null, partialBytes: 0,
      totalBytes: startOffset, lines: 0, blankLines: 0, tooLongLines: 0, shrunk: false,
    };
    if (compression === 'none') {
      const size = (await stat(this.path)).size;
      if (size < startOffset) {
        s.shrunk = true;
        s.totalBytes = size;
        this.summary = s;
        return;
      }
    }
    const stream = openStream(this.path, compression, compression === 'none' ? startOffset : 0);
    // Bytes of the current unfinished line, kept across chunks (only a prefix once too long).
    let carry: Buffer[] = [];
    let carryKept = 0;
    let carryLen = 0;
    let pos = compression === 'none' ? startOffset : 0; // stream offset of the next chunk byte
    const emit = (out: LineRecord[], line: Buffer, offset: number, length: number, end: number, partial = false): void => {
      if (length === 0 || (length === 1 && line[0] === 0x0d)) {
        s.blankLines++;
        return;
      }
      const tooLong = length > max;
      if (tooLong) s.tooLongLines++;
      s.lines++;
      const rec: LineRecord = { line: tooLong ? line.subarray(0, TOO_LONG_PREFIX_BYTES) : line, offset, end, length, tooLong };
      if (partial) rec.partial = true;
      out.push(rec);
    };
    try {
      for await (const raw of stream) {
        let chunk = raw as Buffer;
        if (pos < startOffset) {
          // Compressed resume: skip decompressed bytes before the offset.
          if (pos + chunk.length <= startOffset) {
            pos += chunk.length;
            continue;
          }
          chunk = chunk.subarray(startOffset - pos);
          pos = startOffset;
        }
        const out: LineRecord[] = [];
        let i = 0;
        let nl = chunk.indexOf(0x0a, 0);
        if (nl !== -1 && carryLen > 0) {
          const lineStart = pos - carryLen;
          const length = carryLen + nl;
          let line: Buffer;
          if (length > max) {
            line = Buffer.concat(carry, Math.min(carryKept, TOO_LONG_PREFIX_BYTES));
            if (line.length < TOO_LONG_PREFIX_BYTES) {
              line = Buffer.concat([line, chunk.subarray(0, Math.min(nl, TOO_LONG_PREFIX_BYTES - line.length))]);
            }
          } else {
            carry.push(chunk.subarray(0, nl));
            line = Buffer.concat(carry, length);
          }
          emit(out, line, lineStart, length, pos + nl + 1);
          carry = [];
          carryKept = carryLen = 0;
          i = nl + 1;
          nl = chunk.indexOf(0x0a, i);
        }
        while (nl !== -1) {
          emit(out, chunk.subarray(i, nl), pos + i, nl - i, pos + nl + 1);
          i = nl + 1;
          nl = chunk.indexOf(0x0a, i);
        }
        if (i < chunk.length) {
          const rest = chunk.subarray(i);
          if (carryLen + rest.length <= max) {
            // Copy: the tail must outlive this chunk.
            carry.push(Buffer.from(rest));
            carryKept += rest.length;
          } else {
            // Too long: keep only a prefix, so memory stays bounded.
            if (carryKept > TOO_LONG_PREFIX_BYTES) {
              carry = [Buffer.concat(carry, TOO_LONG_PREFIX_BYTES)];
              carryKept = TOO_LONG_PREFIX_BYTES;
            }
            const room = Math.min(TOO_LONG_PREFIX_BYTES - carryKept, rest.length);
            if (room > 0) {
              carry.push(Buffer.from(rest.subarray(0, room)));
              carryKept += room;
            }
          }
          carryLen += rest.length;
        }
        pos += chunk.length;
        if (out.length > 0) {
          s.endOffset = out[out.length - 1].end;
          yield out;
        }
        // Blank lines still move the resume point.
        s.endOffset = pos - carryLen;
      }
    } finally {
      stream.destroy();
    }
    s.totalBytes = pos;
    if (pos < startOffset) s.shrunk = true;
    if (carryLen > 0) {
      const offset = pos - carryLen;
      if (this.#opts.yieldPartial) {
        const out: LineRecord[] = [];
        emit(out, Buffer.concat(carry, carryKept), offset, carryLen, pos, true);
        s.endOffset = pos;
        if (out.length > 0) yield out;
      } else {
        s.partialOffset = offset;
        s.partialBytes = carryLen;
      }
    }
    this.summary = s;
  }
}

export function readLines(path: string, opts: ReadLinesOptions = {}): LineReader {
  return new LineReader(path, opts);
}

/** sha256 hex of the first complete non-blank line (decompressed), or null when there is none yet. */
export async function hashFirstLine(path: string): Promise<string | null> {
  for await (const rec of readLines(path)) {
    // A too-long first line is identified by its prefix and length.
    const h = createHash('sha256').update(rec.line);
    if (rec.tooLong) h.update(`\n${rec.length}`);
    return h.digest('hex');
  }
  return null;
}

export interface FoundLogFiles {
  files: string[];
  /** Paths (or globs) that match nothing. */
  missing: string[];
  /** Folders that exist but hold no Cowrie JSON log. */
  empty: string[];
  /** Links inside a folder or glob that lead out of it: not followed. */
  linksLeaving: string[];
}

/** Names a folder scan picks up: live and rotated Cowrie JSON logs, compressed or not. */
export const FOLDER_PATTERNS = ['**/*.json*', '**/cowrie*.gz', '**/cowrie*.bz2'];

/** The folder a glob searches: its path up to the first segment with a wildcard. */
function globBase(pattern: string, cwd: string): string {
  const segments = pattern.split('/');
  const fixed: string[] = [];
  for (const seg of segments) {
    if (isDynamicPattern(seg)) break;
    fixed.push(seg);
  }
  return resolve(cwd, fixed.join('/') || '.');
}

async function realPath(p: string): Promise<string | null> {
  try {
    return await realpath(p);
  } catch {
    return null;
  }
}

/**
 * Keep the files a folder or glob search found that stay inside its base once links are
 * resolved: a link `cowrie.json.1 → /etc/shadow` in a log folder must not copy that file's lines
 * into the database. A file reached through a link inside the base is kept under its real path
 * (so it is read once); a plain file keeps the path it was found under.
 */
async function insideBase(found: string[], base: string, out: Set<string>, leaving: string[]): Promise<number> {
  const baseReal = await realPath(base);
  if (baseReal === null) return 0;
  let kept = 0;
  for (const f of found) {
    const abs = resolve(f);
    const real = await realPath(abs);
    if (real === null) continue;
    const direct = join(baseReal, relative(base, abs));
    if (real === direct) {
      out.add(abs);
    } else if (real.startsWith(baseReal + sep)) {
      out.add(real);
    } else {
      leaving.push(abs);
      continue;
    }
    kept++;
  }
  return kept;
}

/**
 * Expand files, folders (recursively) and globs into sorted, de-duplicated absolute paths.
 * An explicitly named file is taken whatever its name, and may be a link; a folder or glob never
 * follows a link out of its base. A path matching nothing goes to `missing`, a folder without
 * logs to `empty`.
 */
export async function findLogFiles(paths: string[], cwd: string = process.cwd()): Promise<FoundLogFiles> {
  const found = new Set<string>();
  const missing: string[] = [];
  const empty: string[] = [];
  const linksLeaving: string[] = [];
  for (const p of paths) {
    const abs = resolve(cwd, p);
    let kind: 'file' | 'dir' | null = null;
    try {
      const st = await stat(abs);
      kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : null;
    } catch {
      kind = null;
    }
    if (kind === 'file') {
      found.add(abs);
    } else if (kind === 'dir') {
      const matches = await glob(FOLDER_PATTERNS, { cwd: abs, absolute: true, onlyFiles: true });
      if ((await insideBase(matches, abs, found, linksLeaving)) === 0) empty.push(p);
    } else if (isDynamicPattern(p)) {
      const matches = await glob(p, { cwd, absolute: true, onlyFiles: true });
      if (matches.length === 0) missing.push(p);
      await insideBase(matches, globBase(p, cwd), found, linksLeaving);
    } else {
      missing.push(p);
    }
  }
  return { files: [...found].sort(), missing, empty, linksLeaving: [...new Set(linksLeaving)].sort() };
}
