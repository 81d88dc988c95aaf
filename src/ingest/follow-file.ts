/**
 * File-level pieces of live mode (follow.ts): reading a file through a handle kept open (so a file
 * renamed or deleted by a rotation is still read to its end), finding where a renamed file went,
 * and the cheap checks run on every cycle.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hashFirstLine } from './reader.js';

/**
 * A path that opens the file behind an open handle, whatever its name now (renamed) or if it has
 * none (deleted): Linux's /dev/fd → /proc/self/fd, and the BSDs' and macOS's /dev/fd.
 */
export function handlePath(fh: FileHandle): string {
  return `/dev/fd/${fh.fd}`;
}

/** `dev:ino`, the form ingest_cursors.inode holds. */
export function inodeKey(st: { dev: number; ino: number }): string {
  return `${st.dev}:${st.ino}`;
}

/** Directory entries read to find a renamed file: a log folder holds a few hundred at most. */
const MAX_ENTRIES_SEARCHED = 10_000;

/**
 * Where the file with this inode is now, among `dir`'s entries other than `except` (Cowrie renames
 * `cowrie.json` to `cowrie.json.YYYY-MM-DD` in the same folder), or null when it is not there
 * (deleted, or moved elsewhere).
 */
export async function findByInode(dir: string, inode: string, except: string): Promise<string | null> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return null;
  }
  for (const name of names.slice(0, MAX_ENTRIES_SEARCHED)) {
    const p = join(dir, name);
    if (p === except) continue;
    try {
      const st = await stat(p);
      if (st.isFile() && inodeKey(st) === inode) return p;
    } catch {
      // Gone meanwhile: not it.
    }
  }
  return null;
}

/** Bytes read from a file's start for the first-line check; a longer first line takes the slow path. */
const HEAD_BYTES = 64 * 1024;

/**
 * The first-line hash `hashFirstLine` gives (sha256 of the first non-blank complete line), read
 * with one small read when the line is short. Run each cycle on a followed file: a file truncated
 * and rewritten past the cursor (logrotate copytruncate) shows a different first line.
 */
export async function firstLineHashOf(fh: FileHandle): Promise<string | null> {
  const buf = Buffer.alloc(HEAD_BYTES);
  const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl === -1 || nl >= bytesRead) break;
    const len = nl - start;
    // Blank lines (and a lone CR) are skipped, as the reader does.
    if (len > 0 && !(len === 1 && buf[start] === 0x0d)) return createHash('sha256').update(buf.subarray(start, nl)).digest('hex');
    start = nl + 1;
  }
  // No complete line in the head: an empty file, a partial first line, or a very long one.
  return bytesRead < HEAD_BYTES ? null : hashFirstLine(handlePath(fh));
}
