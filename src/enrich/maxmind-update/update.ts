/**
 * `geoip update`: for each edition a HEAD (free) says whether the server has a newer build than
 * the local file; only then one download, verified, extracted, checked and swapped in. No
 * retries; after a 401 or the download limit the remaining editions are not tried.
 */
import { mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError, UserError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { DownloadClient, type MaxmindCredentials, type RemoteRelease } from './download.js';
import { stopsTheRun, UpdateFailure, type UpdateFailureReason } from './failure.js';
import { checkDatabase, databasePath, extractDatabase, readLocalDatabase, swapInto, type LocalDatabase, type LocalState } from './install.js';

export interface UpdateOptions {
  dir: string;
  editions: string[];
  baseUrl: string;
  credentials: MaxmindCredentials;
  /** Download even when the local build is as new as the server's. */
  force?: boolean;
  logger: Logger;
  signal?: AbortSignal;
  userAgent?: string;
}

export type EditionResult =
  | { edition: string; outcome: 'current'; local: LocalDatabase; remoteDay: string | null }
  | { edition: string; outcome: 'installed'; previous: LocalDatabase | null; installed: LocalDatabase; bytes: number; checksum: 'verified' | 'not offered' }
  | { edition: string; outcome: 'failed'; reason: UpdateFailureReason; message: string }
  | { edition: string; outcome: 'not-tried'; because: string };

/** What the last download installed, per edition: stops a re-download when the server's date and the build date disagree. */
interface StateEntry {
  remote: string;
  buildEpoch: number;
}
type State = Record<string, StateEntry>;
const STATE_FILE = '.cowrie-geoip-update.json';

async function readState(dir: string): Promise<State> {
  try {
    const parsed: unknown = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8'));
    return parsed && typeof parsed === 'object' ? (parsed as State) : {};
  } catch {
    return {}; // missing or damaged: decide from build dates alone
  }
}

async function writeState(dir: string, state: State): Promise<void> {
  const tmp = join(dir, `${STATE_FILE}.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, join(dir, STATE_FILE));
}

/** Download only when the server's release is newer than the local build (or nothing usable is local). */
export function needsDownload(local: LocalState, remote: RemoteRelease, recorded: StateEntry | undefined, force: boolean): boolean {
  if (local.state !== 'ok' || force) return true;
  if (recorded && recorded.remote === remote.version && recorded.buildEpoch === local.db.buildEpoch.getTime() / 1000) return false;
  if (remote.day === null) {
    throw new UpdateFailure('no-date', 'the server gave no Last-Modified or dated file name, so a newer build cannot be told apart; not downloading (use --force to download anyway)');
  }
  return remote.day > local.db.buildDate;
}

async function updateOne(edition: string, client: DownloadClient, opts: UpdateOptions, state: State): Promise<EditionResult> {
  const target = databasePath(opts.dir, edition);
  const local = await readLocalDatabase(target);
  if (local.state === 'unreadable') opts.logger.warn(`${target} ${local.message}; replacing it`);
  const remote = await client.head(edition);
  if (!needsDownload(local, remote, state[edition], opts.force ?? false)) {
    return { edition, outcome: 'current', local: (local as Extract<LocalState, { state: 'ok' }>).db, remoteDay: remote.day };
  }
  opts.logger.info(`${edition}: server has ${remote.fileName ?? remote.day ?? 'a build'}; downloading`);
  const expected = await client.sha256(edition);
  const work = await mkdtemp(join(opts.dir, `.${edition}.update-`)).catch((err: unknown) => {
    throw new UpdateFailure('disk', `cannot write in ${opts.dir} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
  });
  try {
    const archive = join(work, `${edition}.tar.gz`);
    const got = await client.download(edition, archive);
    if (expected !== null && got.sha256 !== expected) {
      throw new UpdateFailure('checksum', `checksum mismatch: the archive's SHA-256 is ${got.sha256.slice(0, 12)}…, the server's .sha256 says ${expected.slice(0, 12)}…`);
    }
    const extracted = await extractDatabase(archive, edition, work);
    await checkDatabase(extracted, edition);
    const installed = await swapInto(extracted, target, edition);
    state[edition] = { remote: remote.version, buildEpoch: installed.buildEpoch.getTime() / 1000 };
    await writeState(opts.dir, state).catch((err: unknown) => opts.logger.warn(`could not record the update in ${join(opts.dir, STATE_FILE)}: ${errorMessage(err)}`));
    return { edition, outcome: 'installed', previous: local.state === 'ok' ? local.db : null, installed, bytes: got.bytes, checksum: expected === null ? 'not offered' : 'verified' };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const LOCK_FILE = '.cowrie-geoip-update.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Two runs at once (cron and a person) would each download what the other just did. */
async function lock(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        throw new UsageError(`cannot create the lock file ${path} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
      }
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw new UserError(`another geoip update (pid ${pid}) is running on ${dir}; not starting a second one`, 1);
      }
      await rm(path, { force: true }); // left by a run that died
    }
  }
}

export async function updateDatabases(opts: UpdateOptions): Promise<EditionResult[]> {
  await mkdir(opts.dir, { recursive: true }).catch((err: unknown) => {
    throw new UsageError(`cannot create the MaxMind folder ${opts.dir} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
  });
  const unlock = await lock(opts.dir);
  try {
    return await updateAll(opts);
  } finally {
    await unlock();
  }
}

async function updateAll(opts: UpdateOptions): Promise<EditionResult[]> {
  const client = new DownloadClient({ baseUrl: opts.baseUrl, credentials: opts.credentials, signal: opts.signal, userAgent: opts.userAgent });
  const state = await readState(opts.dir);
  const results: EditionResult[] = [];
  let stoppedBy: EditionResult | null = null;
  for (const edition of opts.editions) {
    if (stoppedBy) {
      results.push({ edition, outcome: 'not-tried', because: `stopped after ${stoppedBy.edition}'s failure` });
      continue;
    }
    try {
      results.push(await updateOne(edition, client, opts, state));
    } catch (err) {
      if (!(err instanceof UpdateFailure)) throw err;
      const failed: EditionResult = { edition, outcome: 'failed', reason: err.reason, message: err.message };
      results.push(failed);
      if (stopsTheRun(err.reason)) stoppedBy = failed;
    }
  }
  return results;
}
