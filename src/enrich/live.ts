/**
 * Enrichment while following (`cowrie-loader follow --enrich`): a loop that runs the refresh core —
 * the same passes, caches, rate limits and quotas as `cowrie-enrich refresh` — for the IPs due,
 * at most every `intervalMs` (5 s) or sooner once `batchIps` (500) new IPs wait.
 *
 * The queue lives in the database: IPs new to ip_inventory (never enriched), stale ones, and those
 * still owed a source (`enrichment_pending`). Memory holds only a counter of IPs loaded since the
 * last cycle, so a restart or a crash loses nothing and a nightly refresh neither repeats nor skips
 * any of it; answers are written to enrichment_cache before they count, so a GreyNoise answer is
 * not paid twice across a restart. Each cycle also snapshots sessions whose IP is now enriched and
 * looks up new file hashes on VirusTotal (when enabled), within their limits.
 */
import type { Config } from '../config/config.js';
import { errorMessage, UserError } from '../errors.js';
import { escapeControl } from '../text.js';
import type { Logger } from '../log.js';
import { StatusEmitter } from '../status/emitter.js';
import { countFilesWaiting, countIpsWaiting } from '../store/live-repo.js';
import type { Store } from '../store/store.js';
import { refresh, type RefreshResult } from './refresh.js';
import { enabledSources } from './sources/index.js';

/** An IP waits at most this long for its cycle. */
export const LIVE_INTERVAL_MS = 5000;
/** A cycle starts early once this many new IPs wait; also the most IPs one cycle takes (the rest: the next cycle, at once). */
export const LIVE_BATCH_IPS = 500;
/** Files looked up per cycle at most (VirusTotal's rate bounds it anyway). */
const LIVE_FILES_PER_CYCLE = 100;

export interface LiveEnrichOptions {
  config: Config;
  logger: Logger;
  /** Aborted: the cycle in progress stops at its next commit; run() returns. */
  signal: AbortSignal;
  intervalMs?: number;
  batchIps?: number;
  /** After each cycle: what it asked and got (metrics). */
  onCycle?: (r: RefreshResult) => void;
}

/** What /metrics and follow.json show of the enrichment. */
export interface LiveFigures {
  /** Per source: IPs (or, for VirusTotal, file hashes) waiting in the database, as of the last cycle. */
  queue: Record<string, number>;
  /** Per source with a daily quota: calls left today, as of the last cycle that asked it. */
  quotaLeft: Record<string, number>;
  cycles: number;
  lastCycleAt: number | null;
  lastError: string | null;
}

export class LiveEnricher {
  readonly #store: Store;
  readonly #opts: LiveEnrichOptions;
  readonly #intervalMs: number;
  readonly #batchIps: number;
  /** Enabled sources, and those of them keyed by IP. */
  readonly #sources: string[];
  readonly #ipSources: string[];
  readonly #figures: LiveFigures = { queue: {}, quotaLeft: {}, cycles: 0, lastCycleAt: null, lastError: null };
  /** New IPs loaded since the last cycle began: the only in-memory queue (a count, bounded). */
  #newIps = 0;
  #wake: (() => void) | null = null;

  constructor(store: Store, opts: LiveEnrichOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#intervalMs = opts.intervalMs ?? LIVE_INTERVAL_MS;
    this.#batchIps = opts.batchIps ?? LIVE_BATCH_IPS;
    const enabled = enabledSources(opts.config, opts.logger);
    this.#sources = enabled.map((s) => s.name);
    this.#ipSources = enabled.filter((s) => s.keys === 'ip').map((s) => s.name);
  }

  /** The loader stored `n` IPs new to ip_inventory: a full batch starts a cycle now. */
  newIps(n: number): void {
    this.#newIps += n;
    if (this.#newIps >= this.#batchIps) this.#wake?.();
  }

  figures(): LiveFigures {
    return { ...this.#figures, queue: { ...this.#figures.queue }, quotaLeft: { ...this.#figures.quotaLeft } };
  }

  /** Cycles until the signal is aborted. A failed cycle is logged and retried next interval; nothing is lost (the queue is in the database). */
  async run(): Promise<void> {
    const { signal } = this.#opts;
    const onAbort = () => this.#wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      await this.#updateQueue().catch(() => {});
      while (!signal.aborted) {
        const began = Date.now();
        this.#newIps = 0;
        let full = false;
        try {
          const r = await this.#cycle();
          full = (r.ips?.selected ?? 0) >= this.#batchIps;
        } catch (err) {
          if (signal.aborted && (err as UserError).exitCode === 130) break;
          this.#figures.lastError = escapeControl(`enrichment cycle failed: ${errorMessage(err)}`);
          this.#opts.logger.error(this.#figures.lastError);
        }
        // A full batch means more wait: go on at once; else sleep out the interval unless a batch fills.
        if (!full) await this.#sleep(this.#intervalMs - (Date.now() - began));
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async #cycle(): Promise<RefreshResult> {
    const c = this.#opts.config;
    const r = await refresh(this.#store, {
      sessions: 'all', files: this.#sources.includes('virustotal') && !c.offline ? LIVE_FILES_PER_CYCLE : 'skip', ips: this.#batchIps, ipList: [],
      // The refresh's own status files belong to `cowrie-enrich refresh`; live mode reports in follow.json.
      config: c, logger: this.#opts.logger, status: new StatusEmitter({}), signal: this.#opts.signal,
    });
    this.#figures.cycles++;
    this.#figures.lastCycleAt = Date.now();
    Object.assign(this.#figures.quotaLeft, r.ips?.quotaLeft ?? {});
    await this.#updateQueue();
    this.#opts.onCycle?.(r);
    return r;
  }

  async #updateQueue(): Promise<void> {
    const queue = await countIpsWaiting(this.#store.db, this.#ipSources);
    if (this.#sources.includes('virustotal')) queue.virustotal = await countFilesWaiting(this.#store.db);
    this.#figures.queue = queue;
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#opts.signal.aborted || this.#newIps >= this.#batchIps) return Promise.resolve();
    return new Promise((res) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        res();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }
}
