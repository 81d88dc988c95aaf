/**
 * Live mode (`cowrie-loader follow`): load what a running honeypot writes within a second, through
 * rotations, as a service that loses nothing.
 *
 * Every file is first loaded by the delta loader (`ingest`, mode delta): same parse, identity,
 * dead-letter, summary and cursor rules, so follow, delta and bulk mix on one database. A file
 * under a live name (`cowrie.json`, not `cowrie.json.1` and not compressed) is then kept open and
 * read on every cycle from its cursor; each transaction holds the lines, their summaries and the
 * cursor, as in delta mode. A cycle runs when the folder watcher reports a change and at least
 * every `pollMs` (the fallback when file watching does not work, e.g. NFS).
 *
 * Rotation. The open handle is what makes rotation safe: when the live name points to another file
 * (Cowrie's daily rename to `cowrie.json.YYYY-MM-DD`, or a delete and create), the old file is read
 * through the handle to its end — lines written just before the rename included — and its cursor
 * is stored under its new name, before the new file is read from its start. A file shorter than
 * the cursor, or with another first line (logrotate `copytruncate`), is read again from its start
 * (the copy `cowrie.json.1` is a new file to the folder scan). Identity dedupes what is read twice.
 */
import crypto from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UserError, errorMessage } from '../errors.js';
import { fmt, notice, type Logger } from '../log.js';
import { loadCursors, writeIngestTransaction, type BatchResult } from '../store/ingest-repo.js';
import type { Store } from '../store/store.js';
import { escapeControl } from '../text.js';
import { isFinished } from './file-kind.js';
import { findByInode, firstLineHashOf, handlePath, inodeKey } from './follow-file.js';
import { DEFAULT_BATCH_SIZE, ingest, type FilePlan, type IngestSummary } from './ingest.js';
import { LineSource, parseChunk, WRITE_CHUNK, type FileJob, type HeldLine, type WireEvent } from './parse-source.js';
import { detectCompression, findLogFiles, hashFirstLine, readLines } from './reader.js';
import { SummaryBuilder, type SummarisableEvent } from './summarise.js';

/** A transaction of new lines ends this long after it began (or at the batch size): lines are stored within about a second. */
export const COMMIT_INTERVAL_MS = 500;
/** Cycle at least this often, whatever the watcher says. */
export const POLL_MS = 250;
/** A watcher event wakes the loop, but cycles (and commits) are at least this far apart. */
const MIN_CYCLE_GAP_MS = 100;
/** Folders are searched again for new files at least this often (and on every create/rename event). */
const RESCAN_MS = 2000;
/** A rotated-away file is still read this long, for writers that finish a line on the old handle. */
const RETIRED_GRACE_MS = 5000;
/** Cycles failing in a row (the database is gone, say) before follow gives up (exit 1: a service manager restarts it). */
const MAX_FAILED_CYCLES = 20;
const MAX_BACKOFF_MS = 5000;

export interface FollowOptions {
  paths: string[];
  sensor?: string;
  /** Lines per transaction at most (live reads also commit every COMMIT_INTERVAL_MS); the catch-up uses it too. */
  batchSize?: number;
  commitIntervalMs?: number;
  pollMs?: number;
  logger: Logger;
  /** Aborted (SIGTERM, SIGINT): the open transaction is finished and committed, then follow returns. */
  signal: AbortSignal;
  /** After each commit: what it stored (live mode's consumers: metrics, enrichment). */
  onCommit?: (r: CommitInfo) => void;
}

export interface CommitInfo extends BatchResult {
  eventsRead: number;
  deadLetteredRead: number;
}

export type FollowedState = 'live' | 'waiting' | 'rotated';

export interface FollowedFile {
  path: string;
  state: FollowedState;
  /** Bytes stored (the cursor). */
  offset: number;
  size: number;
  lagBytes: number;
  /** How long the oldest unread complete line has waited (0 when none). */
  lagSeconds: number;
}

export interface FollowStats {
  files: FollowedFile[];
  /** Paths (files, folders, globs) that match nothing yet. */
  waitingFor: string[];
  eventsRead: number;
  inserted: number;
  duplicates: number;
  deadLettered: number;
  deadLetteredNew: number;
  cleaned: number;
  newSessions: number;
  newIps: number;
  commits: number;
  lastCommitAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  startedAt: number;
  /** Whether file watching works (else only polling). */
  watching: boolean;
}


/** A file being read through an open handle. */
interface Tail {
  /** Name the events and the cursor carry. */
  name: string;
  fh: FileHandle | null;
  inode: string;
  generation: number;
  offset: number;
  firstLineHash: string | null;
  /** Size when last read to its end (a held-back last line is not read again until it grows). */
  readTo: number;
  size: number;
  /** Since when unread complete lines have waited (lag), or null. */
  pendingSince: number | null;
}

/** A rotated-away file: still read through its handle for RETIRED_GRACE_MS, then closed. */
interface Retired extends Tail {
  /** Renamed (cursor kept under the new name) or deleted (no cursor: no name to find it again by). */
  keepCursor: boolean;
  until: number;
}

/** The figures ingest() keeps, for parseRecords and the run totals. */
function emptyTotals(): IngestSummary {
  return {
    files: 0, filesFound: 0, filesDone: 0, filesTotal: 0, filesSkipped: 0, filesFailed: [], failures: [], missing: [], linksNotFollowed: [],
    bytesRead: 0, bytesTotal: 0, eventsRead: 0, inserted: 0, duplicates: 0, deadLettered: 0, deadLetteredNew: 0, cleaned: 0, sessions: 0, newIps: 0,
    partialLines: 0, heldBack: { incomplete_line: 0, live_file: 0 }, eventsPerSecond: 0, elapsedSeconds: 0, currentFile: null, interrupted: false,
  };
}

/** Cowrie's live names: plain files not named like a rotated one (`*.json.*`). */
async function isLiveName(path: string): Promise<boolean> {
  const now = Date.now();
  return !isFinished(path, 'none', now, now) && (await detectCompression(path)) === 'none';
}

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';

export class Follower {
  readonly #store: Store;
  readonly #opts: FollowOptions;
  readonly #batchSize: number;
  readonly #commitMs: number;
  readonly #pollMs: number;
  readonly #ingestId = crypto.randomUUID();
  /** Live names, by path. */
  readonly #tails = new Map<string, Tail>();
  #retired: Retired[] = [];
  /** Other files (rotated, compressed) by path → `inode:size:mtime` when last loaded. */
  readonly #seen = new Map<string, string>();
  /** Files the loader refused (not a JSON log), by path → the same key: tried again once changed. */
  readonly #refused = new Map<string, string>();
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #totals = emptyTotals();
  readonly #stats: FollowStats;
  readonly #waitingLogged = new Set<string>();
  #rescanDue = true;
  #lastRescan = 0;
  #wake: (() => void) | null = null;
  #woken = false;

  constructor(store: Store, opts: FollowOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
    this.#commitMs = opts.commitIntervalMs ?? COMMIT_INTERVAL_MS;
    this.#pollMs = opts.pollMs ?? POLL_MS;
    this.#stats = {
      files: [], waitingFor: [], eventsRead: 0, inserted: 0, duplicates: 0, deadLettered: 0, deadLetteredNew: 0, cleaned: 0, newSessions: 0, newIps: 0,
      commits: 0, lastCommitAt: null, lastError: null, lastErrorAt: null, startedAt: Date.now(), watching: false,
    };
  }

  /** Figures for follow.json and /metrics. */
  stats(): FollowStats {
    const now = Date.now();
    const file = (t: Tail, state: FollowedState): FollowedFile => ({
      path: t.name, state: t.fh ? state : 'waiting', offset: t.offset, size: t.size,
      lagBytes: Math.max(0, t.size - t.offset), lagSeconds: t.pendingSince === null ? 0 : (now - t.pendingSince) / 1000,
    });
    this.#stats.files = [...[...this.#tails.values()].map((t) => file(t, 'live')), ...this.#retired.map((t) => file(t, 'rotated'))];
    this.#stats.cleaned = this.#totals.cleaned;
    return { ...this.#stats, files: this.#stats.files.map((f) => ({ ...f })), waitingFor: [...this.#stats.waitingFor] };
  }

  /** Follow until the signal is aborted; the open transaction is committed first. */
  async run(): Promise<FollowStats> {
    const { signal } = this.#opts;
    const onAbort = () => this.#wakeUp();
    signal.addEventListener('abort', onAbort);
    let failed = 0;
    try {
      while (!signal.aborted) {
        const began = Date.now();
        try {
          await this.#cycle();
          failed = 0;
        } catch (err) {
          if (signal.aborted) break;
          failed++;
          this.#recordError(`follow cycle failed (${failed} in a row): ${errorMessage(err)}`);
          if (failed >= MAX_FAILED_CYCLES) throw new UserError(`follow stopped after ${failed} failed cycles in a row: ${errorMessage(err)}`, 1);
          await this.#sleep(Math.min(MAX_BACKOFF_MS, this.#pollMs * 2 ** failed), true);
          continue;
        }
        await this.#sleep(Math.max(MIN_CYCLE_GAP_MS - (Date.now() - began), 0), true);
        await this.#sleep(this.#pollMs - MIN_CYCLE_GAP_MS, false);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      for (const w of this.#watchers.values()) w.close();
      this.#watchers.clear();
      for (const t of [...this.#tails.values(), ...this.#retired]) await t.fh?.close().catch(() => {});
    }
    return this.stats();
  }

  #recordError(message: string): void {
    const line = escapeControl(message);
    this.#stats.lastError = line;
    this.#stats.lastErrorAt = Date.now();
    this.#opts.logger.error(line);
  }

  /** Wait `ms`; a watcher event ends the wait early unless `fixed` (the minimum gap between cycles). */
  #sleep(ms: number, fixed: boolean): Promise<void> {
    if (ms <= 0 || this.#opts.signal.aborted) return Promise.resolve();
    if (!fixed && this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise((res) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        res();
      };
      const timer = setTimeout(done, ms);
      if (!fixed) this.#wake = done;
    });
  }

  #wakeUp(): void {
    if (this.#wake) this.#wake();
    else this.#woken = true;
  }

  async #cycle(): Promise<void> {
    if (this.#rescanDue || Date.now() - this.#lastRescan >= RESCAN_MS) await this.#rescan();
    for (const t of this.#tails.values()) {
      if (this.#opts.signal.aborted) return;
      await this.#followTail(t);
    }
    await this.#drainRetired();
  }

  // ---------- finding files ----------

  async #rescan(): Promise<void> {
    this.#rescanDue = false;
    this.#lastRescan = Date.now();
    this.#watchFolders();
    this.#stats.watching = this.#watchers.size > 0;
    const found = await findLogFiles(this.#opts.paths);
    this.#stats.waitingFor = [...found.missing, ...found.empty];
    for (const p of this.#stats.waitingFor) {
      if (this.#waitingLogged.has(p)) continue;
      this.#waitingLogged.add(p);
      notice(this.#opts.logger, `Waiting for ${escapeControl(p)} (no Cowrie JSON log there yet)`);
    }
    for (const l of found.linksLeaving) {
      if (this.#waitingLogged.has(l)) continue;
      this.#waitingLogged.add(l);
      this.#opts.logger.warn(`Not following ${escapeControl(l)}: a link that leads out of the folder (name the file itself to follow it)`);
    }
    const held = new Set<string>();
    for (const t of [...this.#tails.values(), ...this.#retired]) if (t.fh) held.add(t.inode);
    const toLoad: string[] = [];
    const keys = new Map<string, string>();
    for (const p of found.files) {
      if (this.#tails.has(p)) continue;
      let key: string;
      try {
        const st = await stat(p);
        // A file being read through a handle (a live file, or one just rotated away) is not loaded twice at once.
        if (held.has(inodeKey(st))) continue;
        key = `${inodeKey(st)}:${st.size}:${st.mtimeMs}`;
      } catch {
        continue; // gone since the search
      }
      if (this.#seen.get(p) === key || this.#refused.get(p) === key) continue;
      keys.set(p, key);
      toLoad.push(p);
    }
    if (toLoad.length === 0) return;
    await this.#loadNew(toLoad, keys);
  }

  /** Watch the folders that hold what we follow: events wake the loop; polling stays the fallback. */
  #watchFolders(): void {
    const dirs = new Set<string>();
    for (const p of this.#opts.paths) {
      const abs = resolve(p);
      dirs.add(abs);
      dirs.add(dirname(abs));
    }
    for (const dir of dirs) {
      if (this.#watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, (event) => {
          if (event === 'rename') this.#rescanDue = true;
          this.#wakeUp();
        });
        w.on('error', () => {
          // The folder went away or the platform stopped reporting: polling carries on; watched again at the next search.
          w.close();
          this.#watchers.delete(dir);
        });
        this.#watchers.set(dir, w);
      } catch {
        // Not a folder (yet), or no watching here (inotify limits, some network file systems): polling covers it.
      }
    }
  }

  /**
   * Files new to this run (or changed, when not live): loaded by the delta loader from their cursor;
   * live names are then kept open and followed. A live name whose cursor belongs to another file
   * now was rotated while follow was not running: the old file is found by its inode and loaded
   * first, so its last lines are not lost.
   */
  async #loadNew(paths: string[], keys: Map<string, string>): Promise<void> {
    const live = new Set<string>();
    for (const p of paths) if (await isLiveName(p).catch(() => false)) live.add(p);
    const cursors = await loadCursors(this.#store.db);
    const extra: string[] = [];
    for (const p of live) {
      const c = cursors.get(p);
      const st = await stat(p).catch(() => null);
      if (!c?.inode || !st || c.inode === inodeKey(st)) continue;
      const moved = await findByInode(dirname(p), c.inode, p);
      if (moved && !paths.includes(moved)) extra.push(moved);
    }
    const all = [...extra, ...paths];
    const r = await ingest(this.#store, { paths: all, mode: 'delta', sensor: this.#opts.sensor, batchSize: this.#batchSize, logger: this.#opts.logger, signal: this.#opts.signal });
    this.#count({
      inserted: r.inserted, duplicates: r.duplicates, deadLettered: r.deadLetteredNew, newSessions: r.sessions, newIps: r.newIps,
      eventsRead: r.eventsRead, deadLetteredRead: r.deadLettered,
    }, r.files > 0);
    this.#totals.cleaned += r.cleaned;
    if (r.interrupted) return;
    const failed = new Map(r.failures.map((f) => [f.path, f]));
    for (const p of paths) {
      const f = failed.get(p);
      if (f) {
        this.#refused.set(p, keys.get(p) ?? '');
        this.#recordError(f.message);
        continue;
      }
      if (live.has(p)) await this.#startTail(p);
      else {
        // Remember the state it was loaded in (stat again: it may have grown while read).
        const st = await stat(p).catch(() => null);
        if (st) this.#seen.set(p, `${inodeKey(st)}:${st.size}:${st.mtimeMs}`);
      }
    }
  }

  /** Open a live file loaded by the delta loader and take up its cursor. */
  async #startTail(path: string): Promise<void> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if (!isMissing(err)) this.#recordError(`Cannot open ${path}: ${errorMessage(err)}`);
      return;
    }
    const st = await fh.stat();
    const c = (await loadCursors(this.#store.db)).get(path);
    const same = c !== undefined && c.inode === inodeKey(st) && c.byteOffset <= st.size;
    const t: Tail = {
      name: path, fh, inode: inodeKey(st), generation: same ? c.generation : c ? c.generation + 1 : 0,
      offset: same ? c.byteOffset : 0, firstLineHash: same ? c.firstLineHash : null, readTo: same ? c.byteOffset : 0, size: st.size, pendingSince: null,
    };
    this.#tails.set(path, t);
    this.#opts.logger.info(`Following ${escapeControl(path)} from byte ${fmt(t.offset)}`);
  }

  // ---------- reading ----------

  /** One cycle of a live name: notice a rotation, then read what is new. */
  async #followTail(t: Tail): Promise<void> {
    let st: Awaited<ReturnType<typeof stat>> | null = null;
    try {
      st = await stat(t.name);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    if (t.fh && (!st || inodeKey(st) !== t.inode)) await this.#retire(t);
    if (!t.fh) {
      if (!st) return;
      try {
        t.fh = await open(t.name, 'r');
      } catch (err) {
        if (isMissing(err)) return;
        throw err;
      }
      const now = await t.fh.stat();
      t.inode = inodeKey(now);
      notice(this.#opts.logger, `${escapeControl(t.name)}: a new file; reading it from its start`);
    }
    await this.#drain(t, { keepCursor: true, finished: null });
  }

  /**
   * The live name now points elsewhere (or nowhere): read the old file to its end through the
   * handle, keep reading it a little longer, and follow the name afresh (next generation, offset 0).
   */
  async #retire(t: Tail): Promise<void> {
    const movedTo = await findByInode(dirname(t.name), t.inode, t.name);
    const r: Retired = { ...t, name: movedTo ?? t.name, keepCursor: movedTo !== null, until: Date.now() + RETIRED_GRACE_MS };
    notice(this.#opts.logger, movedTo
      ? `${escapeControl(t.name)} was rotated to ${escapeControl(movedTo)}; reading it to its end`
      : `${escapeControl(t.name)} was deleted or moved away; reading it to its end`);
    this.#retired.push(r);
    // Forced: the cursor moves to the new name even when nothing new is read (delta then knows the file).
    await this.#drain(r, { keepCursor: r.keepCursor, finished: false, force: true });
    Object.assign(t, { fh: null, generation: t.generation + 1, offset: 0, firstLineHash: null, readTo: 0, size: 0, pendingSince: null });
  }

  async #drainRetired(): Promise<void> {
    const keep: Retired[] = [];
    for (const r of this.#retired) {
      const last = Date.now() >= r.until || this.#opts.signal.aborted;
      // The last read counts the file finished: a last line without a newline is loaded or dead-lettered.
      if (!this.#opts.signal.aborted) await this.#drain(r, { keepCursor: r.keepCursor, finished: last });
      if (last) await r.fh?.close().catch(() => {});
      else keep.push(r);
    }
    this.#retired = keep;
  }

  /**
   * Read a followed file from its cursor to its end through its handle, in transactions of at most
   * the batch size and COMMIT_INTERVAL_MS. `finished` null: decided as delta mode does (a live name
   * quiet for five minutes).
   */
  async #drain(t: Tail, how: { keepCursor: boolean; finished: boolean | null; force?: boolean }): Promise<void> {
    const fh = t.fh;
    if (!fh) return;
    const st = await fh.stat();
    t.size = st.size;
    const changed = st.size !== t.readTo;
    if (t.offset > 0 && (st.size < t.offset || (changed && (await firstLineHashOf(fh)) !== t.firstLineHash))) {
      // Truncated in place (copytruncate) or rewritten: the content at the cursor is not what was read.
      notice(this.#opts.logger, `${escapeControl(t.name)} was truncated or rewritten; reading it again from its start`);
      Object.assign(t, { generation: t.generation + 1, offset: 0, firstLineHash: null, readTo: 0 });
    }
    const finished = how.finished ?? isFinished(t.name, 'none', st.mtimeMs, Date.now());
    if (!how.force && st.size === t.readTo && !(finished && t.readTo > t.offset)) return;
    if (st.size > t.offset) t.pendingSince ??= Date.now();
    const path = handlePath(fh);
    const plan: FilePlan = {
      path: t.name, inode: t.inode, size: st.size, startOffset: t.offset, generation: t.generation, firstLineHash: t.firstLineHash,
      skip: false, finished, loadCompleteTail: finished,
    };
    const src = new LineSource(readLines(path, { startOffset: t.offset, yieldPartial: true }));
    const job: FileJob = { path: t.name, startOffset: t.offset, finished, loadCompleteTail: finished, sensor: this.#opts.sensor, batchSize: this.#batchSize };
    const file = { source: t.name, sourceInode: t.inode, sourceGeneration: t.generation };
    const state = { eof: false, stop: false, shrunk: false, held: null as HeldLine | null, lastEnd: t.offset, read: 0, dead: 0 };
    while (!state.eof && !state.stop) {
      state.read = 0;
      state.dead = 0;
      const r = await writeIngestTransaction<WireEvent>(this.#store.db, { ingestId: this.#ingestId, summary: () => new SummaryBuilder() }, async (w) => {
        const began = Date.now();
        let n = 0;
        let pending: Promise<unknown> | null = null;
        while (n < this.#batchSize && Date.now() - began < this.#commitMs) {
          if (this.#opts.signal.aborted) { state.stop = true; break; }
          const recs = await src.take(Math.min(WRITE_CHUNK, this.#batchSize - n));
          if (recs === null) { state.eof = true; break; }
          const chunk = parseChunk(recs, job);
          state.held = chunk.held;
          this.#totals.cleaned += chunk.cleaned;
          if (chunk.held) this.#totals.heldBack[chunk.held.reason]++;
          if (pending) await pending;
          pending = w.write(file, chunk.events, chunk.deadLetters);
          pending.catch(() => {}); // awaited below
          n += recs.length;
          state.lastEnd = chunk.lastEnd;
          state.read += recs.length - (state.held ? 1 : 0);
          state.dead += chunk.deadLetters.length;
        }
        if (pending) await pending;
        if (state.eof && src.error === null && src.summary?.shrunk) { state.shrunk = true; return null; }
        plan.firstLineHash ??= state.lastEnd > 0 ? await hashFirstLine(path) : null;
        if (!how.keepCursor) return null;
        const complete = state.eof && src.error === null && state.held === null && src.summary !== null;
        return {
          source: t.name, inode: t.inode, generation: t.generation, byteOffset: state.lastEnd, firstLineHash: plan.firstLineHash,
          sourceSize: complete ? src.summary!.totalBytes : null,
        };
      });
      t.offset = state.lastEnd;
      t.firstLineHash = plan.firstLineHash;
      this.#count({ ...r, eventsRead: state.read, deadLetteredRead: state.dead }, true);
    }
    if (src.error !== null) throw src.error;
    if (state.shrunk) {
      // Truncated while being read: the next cycle reads it again from its start.
      Object.assign(t, { generation: t.generation + 1, offset: 0, firstLineHash: null, readTo: 0 });
      return;
    }
    if (state.eof) {
      t.readTo = src.summary?.totalBytes ?? t.offset;
      t.size = Math.max(t.size, t.readTo);
      if (state.held === null || t.offset >= t.readTo) t.pendingSince = null;
    }
  }

  #count(r: CommitInfo, committed: boolean): void {
    const s = this.#stats;
    s.eventsRead += r.eventsRead;
    s.inserted += r.inserted;
    s.duplicates += r.duplicates;
    s.deadLettered += r.deadLetteredRead;
    s.deadLetteredNew += r.deadLettered;
    s.newSessions += r.newSessions;
    s.newIps += r.newIps;
    if (committed) {
      s.commits++;
      s.lastCommitAt = Date.now();
    }
    this.#opts.onCommit?.(r);
  }
}

/** Follow Cowrie's live log(s) until the signal is aborted; see Follower. */
export async function follow(store: Store, opts: FollowOptions): Promise<FollowStats> {
  return new Follower(store, opts).run();
}
