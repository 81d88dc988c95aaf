/**
 * Status files for long runs (guide "Progress Indicators"): `<dir>/<phase>.json` per phase and
 * `<dir>/status.json` for the whole run, rewritten atomically (temp file + rename) at most every
 * few seconds. Writing status must never kill a run: failures are reported once and ignored.
 */
import { chmodSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

export type RunState = 'running' | 'complete' | 'aborted' | 'failed';

export interface StatusEmitterOptions {
  /** Folder for the status files; without one nothing is written. */
  dir?: string;
  /** Minimum time between writes, unless forced. Default 2000. */
  minIntervalMs?: number;
  logger?: Logger;
  /** Clock, for tests. */
  now?: () => number;
  /** Told of every update, written or not (the terminal progress display follows the run through it). */
  onUpdate?: (phase: string, fields: Record<string, unknown>) => void;
}

export interface UpdateOptions {
  /** Write now, whatever the throttle says (phase ends, final figures). */
  force?: boolean;
}

/** 'YYYY-MM-DDTHH:MM:SSZ', as in the guide's example. */
export function statusTimestamp(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** A phase name safe as a file name, never colliding with status.json. */
export function phaseFileName(phase: string): string {
  const safe = phase.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^\.+/, '_') || 'phase';
  return `${safe === 'status' ? 'phase_status' : safe}.json`;
}

/** Status files hold host names and counts of an attack log: no world access, whatever the umask. */
const FILE_MODE = 0o640;
const DIR_MODE = 0o750;
const DIR_ERRORS: Record<string, string> = {
  ENOENT: 'a folder cannot be created there',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'part of the path is a file',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
};

/**
 * Create `dir` and its missing parents (0750), one level at a time. Node's recursive mkdir loops
 * forever, synchronously and deaf to signals, under /proc; this walk is bounded by the path's depth.
 */
export function ensurePrivateDir(dir: string): void {
  const missing: string[] = [];
  for (let cur = resolve(dir); ; cur = dirname(cur)) {
    try {
      if (!statSync(cur).isDirectory()) throw Object.assign(new Error(`${cur} is not a folder`), { code: 'ENOTDIR' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(cur) === cur) throw err;
      missing.push(cur);
    }
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, DIR_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      continue;
    }
    chmodSync(d, DIR_MODE);
  }
}

let tmpCounter = 0;

/** One status file written atomically (temp file + rename), 0640; throws on failure (callers decide). */
export function writeStatusFile(dir: string, name: string, doc: unknown): void {
  const tmp = join(dir, `.${name}.${process.pid}.${tmpCounter++}.tmp`);
  try {
    writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: FILE_MODE });
    chmodSync(tmp, FILE_MODE);
    renameSync(tmp, join(dir, name));
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // Nothing more to do: status is best effort.
    }
    throw err;
  }
}

export class StatusEmitter {
  readonly dir: string | undefined;
  readonly #minIntervalMs: number;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #onUpdate: StatusEmitterOptions['onUpdate'];
  readonly #phases = new Map<string, Record<string, unknown>>();
  readonly #dirty = new Set<string>();
  #current: string | null = null;
  #state: RunState = 'running';
  #lastWrite = -Infinity;
  #lastPhaseWritten: string | null = null;
  #warned = false;
  #dirReady = false;

  constructor(opts: StatusEmitterOptions = {}) {
    this.dir = opts.dir;
    this.#minIntervalMs = opts.minIntervalMs ?? 2000;
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#onUpdate = opts.onUpdate;
  }

  /**
   * Create the status folder now, so an unusable --status-dir is one clear error (exit 2) before
   * any work starts rather than a warning later.
   */
  prepare(): void {
    if (this.dir === undefined) return;
    try {
      ensurePrivateDir(this.dir);
      this.#dirReady = true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      const why = DIR_ERRORS[code] ?? errorMessage(err);
      throw new UsageError(`cannot use status folder ${this.dir}: ${why}${code ? ` (${code})` : ''}`);
    }
  }

  get state(): RunState {
    return this.#state;
  }

  /**
   * Record the latest figures of a phase; written now if forced, on a phase change, or when
   * minIntervalMs has passed since the last write. Returns whether files were written.
   */
  update(phase: string, fields: Record<string, unknown>, opts: UpdateOptions = {}): boolean {
    if (this.#state !== 'running') return false;
    this.#onUpdate?.(phase, fields);
    this.#phases.set(phase, { ...fields });
    this.#dirty.add(phase);
    this.#current = phase;
    const now = this.#now();
    const due = opts.force === true || phase !== this.#lastPhaseWritten || now - this.#lastWrite >= this.#minIntervalMs;
    if (!due) return false;
    return this.#flush(now);
  }

  /** Final figures with the end state; later updates are ignored. */
  finish(state: Exclude<RunState, 'running'>, fields?: Record<string, unknown>): boolean {
    if (this.#state !== 'running') return false;
    if (this.#current === null) this.#current = 'run';
    const phase = this.#current;
    if (fields !== undefined) this.#phases.set(phase, { ...(this.#phases.get(phase) ?? {}), ...fields });
    this.#dirty.add(phase);
    this.#state = state;
    return this.#flush(this.#now());
  }

  #flush(now: number): boolean {
    this.#lastWrite = now;
    this.#lastPhaseWritten = this.#current;
    if (this.dir === undefined) {
      this.#dirty.clear();
      return false;
    }
    const timestamp = statusTimestamp(now);
    const final = this.#state !== 'running';
    const phases: Record<string, unknown> = {};
    let ok = true;
    for (const [phase, fields] of this.#phases) {
      // The phase file of a finished run carries the end state too.
      const doc = { phase, ...fields, ...(final && phase === this.#current ? { state: this.#state } : {}), timestamp };
      phases[phase] = doc;
      if (this.#dirty.has(phase)) ok = this.#write(phaseFileName(phase), doc) && ok;
    }
    this.#dirty.clear();
    ok = this.#write('status.json', { phase: this.#current, state: this.#state, timestamp, phases }) && ok;
    return ok;
  }

  #write(name: string, doc: unknown): boolean {
    const dir = this.dir as string;
    try {
      if (!this.#dirReady) {
        ensurePrivateDir(dir);
        this.#dirReady = true;
      }
      writeStatusFile(dir, name, doc);
      return true;
    } catch (err) {
      if (!this.#warned) {
        this.#warned = true;
        const msg = err instanceof Error ? err.message : String(err);
        this.#logger?.warn(`cannot write status files in ${dir} (further status errors are not reported): ${msg}`);
      }
      return false;
    }
  }
}
