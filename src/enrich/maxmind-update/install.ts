/**
 * From a downloaded archive to a database in place: extract the one `.mmdb` with `tar`, open it
 * with the maxmind reader, check its type, then rename it over the old file. The old file stays
 * as `<edition>.mmdb.prev` until the new one has been opened at its final path, so a failure at
 * any step leaves a working database behind; readers that already loaded the old one keep it.
 */
import { copyFile, link, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Reader } from 'maxmind';
import { extract } from 'tar';
import { errorMessage } from '../../errors.js';
import { UpdateFailure } from './failure.js';

export interface LocalDatabase {
  path: string;
  databaseType: string;
  buildEpoch: Date;
  /** YYYY-MM-DD (UTC). */
  buildDate: string;
}

export type LocalState =
  | { state: 'missing'; path: string }
  | { state: 'unreadable'; path: string; message: string }
  | { state: 'ok'; path: string; db: LocalDatabase };

/** A GeoIP2 City database is ~130 MB unpacked; this bounds what we ever read into memory. */
const MAX_DATABASE_BYTES = 2 * 1024 ** 3 - 1;

export function databasePath(dir: string, edition: string): string {
  return join(dir, `${edition}.mmdb`);
}

function openReader(buf: Buffer, path: string): LocalDatabase {
  const reader = new Reader(buf);
  // The constructor checks the metadata only; one lookup walks the search tree and the data.
  reader.get('1.1.1.1');
  const buildEpoch = reader.metadata.buildEpoch;
  return { path, databaseType: reader.metadata.databaseType, buildEpoch, buildDate: buildEpoch.toISOString().slice(0, 10) };
}

/** What is on disk at `path`: its type and build date, or why there is nothing usable. */
export async function readLocalDatabase(path: string): Promise<LocalState> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { state: 'missing', path };
    return { state: 'unreadable', path, message: `cannot be read (${code ?? errorMessage(err)})` };
  }
  try {
    return { state: 'ok', path, db: openReader(buf, path) };
  } catch (err) {
    return { state: 'unreadable', path, message: `is not a valid MaxMind DB file (${errorMessage(err)})` };
  }
}

/** Extract `<edition>.mmdb` from the archive into `workDir`; returns its path. */
export async function extractDatabase(archive: string, edition: string, workDir: string): Promise<string> {
  const wanted = `${edition}.mmdb`;
  const found: string[] = [];
  let oversize = false;
  try {
    await extract({
      file: archive,
      cwd: workDir,
      strict: true,
      filter: (path, entry) => {
        if (basename(path) !== wanted || !('type' in entry) || entry.type !== 'File') return false;
        if ((entry.size ?? 0) > MAX_DATABASE_BYTES) {
          oversize = true;
          return false;
        }
        found.push(path);
        return true;
      },
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') throw new UpdateFailure('disk', 'no space left on the disk while extracting the archive');
    throw new UpdateFailure('corrupt', `corrupt archive (${errorMessage(err)})`);
  }
  if (oversize) throw new UpdateFailure('too-big', `${wanted} in the archive is larger than ${MAX_DATABASE_BYTES} bytes`);
  if (found.length !== 1) throw new UpdateFailure('corrupt', `the archive holds ${found.length === 0 ? 'no' : found.length} ${wanted}`);
  return join(workDir, found[0]);
}

/** Open the extracted file with the maxmind reader and check it is the edition we asked for. */
export async function checkDatabase(path: string, edition: string): Promise<LocalDatabase> {
  const local = await readLocalDatabase(path);
  if (local.state !== 'ok') throw new UpdateFailure('corrupt', `the downloaded ${edition}.mmdb ${local.state === 'unreadable' ? local.message : 'is missing'}`);
  if (local.db.databaseType !== edition) {
    throw new UpdateFailure('wrong-edition', `the downloaded database is a ${local.db.databaseType}, not a ${edition}`);
  }
  return local.db;
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Put the checked file `fresh` at `target` atomically (same folder, so rename is atomic),
 * keeping the old file as `.prev` until the new one opens at `target`.
 */
export async function swapInto(fresh: string, target: string, edition: string): Promise<LocalDatabase> {
  const prev = `${target}.prev`;
  try {
    await fsyncPath(fresh);
    await rm(prev, { force: true });
    let kept = true;
    try {
      await link(target, prev);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') kept = false;
      else if (code === 'EPERM' || code === 'ENOTSUP') await copyFile(target, prev); // no hard links here
      else throw err;
    }
    await rename(fresh, target);
    const reopened = await readLocalDatabase(target);
    if (reopened.state !== 'ok' || reopened.db.databaseType !== edition) {
      if (kept) await rename(prev, target);
      throw new UpdateFailure('corrupt', `the new ${edition}.mmdb did not open after the swap; the old one is back in place`);
    }
    await rm(prev, { force: true });
    return reopened.db;
  } catch (err) {
    if (err instanceof UpdateFailure) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
    throw new UpdateFailure('disk', `cannot put the new database in place (${code})`);
  }
}
