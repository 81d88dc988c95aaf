/**
 * Enrichment while following (`cowrie-loader follow --enrich`): the refresh core — the same passes,
 * caches, rate limits and quotas as `cowrie-enrich refresh` — run by two loops, so an IP's ASN and
 * country never wait for a rate-bounded HTTP source:
 *
 * - the fast loop asks the offline and bulk sources (MaxMind, Cymru) for the IPs due (up to
 *   `batchIps`, 500, a cycle) as soon as the loader stores new IPs (at most one cycle per 500 ms),
 *   and at least every `intervalMs` (5 s), and commits their rows with the HTTP sources
 *   (GreyNoise, …) left pending in `enrichment_pending`, as for a source a run cannot ask;
 * - the HTTP loop asks those sources, within their rates and quotas, for IPs owed nothing else,
 *   longest waiting first (new IPs never starve old ones), merging into the stored row; it also
 *   snapshots sessions whose IP is owed nothing it is about to ask, and looks up new file hashes
 *   on VirusTotal (when enabled).
 *
 * The two never take the same IP: the fast loop takes IPs never enriched, stale, or owed a source
 * it asks; the HTTP loop only IPs owed nothing but HTTP sources and not near stale. The queue lives
 * in the database: memory holds only a counter of IPs loaded since the last cycle, so a restart or
 * a crash loses nothing and a nightly refresh neither repeats nor skips any of it; answers are
 * written to enrichment_cache before they count, so a GreyNoise answer is not paid twice across a restart.
 */
import type { Config } from '../config/config.js';
import { errorMessage, UserError } from '../errors.js';
import { escapeControl } from '../text.js';
import type { Logger } from '../log.js';
import { StatusEmitter } from '../status/emitter.js';
import { countFilesWaiting, countIpsWaiting } from '../store/live-repo.js';
import type { Store } from '../store/store.js';
import { utcDay } from '../store/time.js';
import { availability } from './ip-refresh.js';
import { refresh, type RefreshOptions, type RefreshResult } from './refresh.js';
import { enabledSources } from './sources/index.js';

/** Each loop runs at least this often (stale IPs, retries, sessions, files). */
export const LIVE_INTERVAL_MS = 5000;
/**
 * The fast loop starts a cycle as soon as the loader stores a new IP, but at most one per this
 * long (what arrives meanwhile shares the cycle): an IP waits at most about this plus one cycle.
 */
export const LIVE_FAST_GAP_MS = 500;
/** The most IPs one cycle takes (the rest: the next cycle, at once). */
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
  readonly #fastGapMs: number;
  readonly #batchIps: number;
  /** Enabled sources, and those of them keyed by IP. */
  readonly #sources: string[];
  readonly #ipSources: string[];
  /** IP sources asked over HTTP one key at a time (GreyNoise, …): the HTTP loop's; those of them this run can ask. */
  readonly #httpIpSources: string[];
  readonly #httpAskable: string[];
  readonly #figures: LiveFigures = { queue: {}, quotaLeft: {}, cycles: 0, lastCycleAt: null, lastError: null };
  /** New IPs loaded since the last fast cycle began: the only in-memory queue (a count, bounded). */
  #newIps = 0;
  readonly #wake: { fast: (() => void) | null; http: (() => void) | null } = { fast: null, http: null };
  /** UTC day on which each HTTP source last said its daily quota is spent. */
  readonly #quotaSpentOn = new Map<string, string>();
  /** Woken while busy: its next sleep is skipped (a wake is never lost). */
  readonly #woken = { fast: false, http: false };

  constructor(store: Store, opts: LiveEnrichOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#intervalMs = opts.intervalMs ?? LIVE_INTERVAL_MS;
    this.#fastGapMs = Math.min(LIVE_FAST_GAP_MS, this.#intervalMs);
    this.#batchIps = opts.batchIps ?? LIVE_BATCH_IPS;
    const enabled = enabledSources(opts.config, opts.logger);
    this.#sources = enabled.map((s) => s.name);
    const ip = enabled.filter((s) => s.keys === 'ip');
    this.#ipSources = ip.map((s) => s.name);
    const http = ip.filter((s) => s.network && !s.after?.length);
    this.#httpIpSources = http.map((s) => s.name);
    this.#httpAskable = http.filter((s) => availability(s, { offline: opts.config.offline, config: opts.config }) === 'ok').map((s) => s.name);
  }

  /** The loader stored `n` IPs new to ip_inventory: the fast loop starts a cycle (LIVE_FAST_GAP_MS after its last at the earliest). */
  newIps(n: number): void {
    this.#newIps += n;
    if (n > 0) this.#nudge('fast');
  }

  figures(): LiveFigures {
    return { ...this.#figures, queue: { ...this.#figures.queue }, quotaLeft: { ...this.#figures.quotaLeft } };
  }

  /** Both loops until the signal is aborted. A failed cycle is logged and retried next interval; nothing is lost (the queue is in the database). */
  async run(): Promise<void> {
    const { signal } = this.#opts;
    const onAbort = () => {
      this.#nudge('fast');
      this.#nudge('http');
    };
    signal.addEventListener('abort', onAbort);
    try {
      await this.#updateQueue().catch(() => {});
      await Promise.all([this.#loop('fast'), this.#loop('http')]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async #loop(which: 'fast' | 'http'): Promise<void> {
    const { signal } = this.#opts;
    while (!signal.aborted) {
      const began = Date.now();
      if (which === 'fast') this.#newIps = 0;
      let more = false;
      try {
        const r = await this.#cycle(which);
        const ips = r.ips;
        // A full batch means more wait: go on at once. (The HTTP loop only while answers come: a
        // spent quota or a rejected key leaves its batch pending; it waits out the interval.)
        more = (ips?.selected ?? 0) >= this.#batchIps && (which === 'fast' || (ips?.enriched ?? 0) > 0);
        // IPs just written owe the HTTP sources (or wait for their sessions' snapshot): wake that loop.
        if (which === 'fast' && ips?.processed) this.#nudge('http');
      } catch (err) {
        if (signal.aborted && (err as UserError).exitCode === 130) break;
        this.#figures.lastError = escapeControl(`enrichment cycle failed: ${errorMessage(err)}`);
        this.#opts.logger.error(this.#figures.lastError);
      }
      if (!more) {
        // New IPs arriving during the gap share the next cycle.
        if (which === 'fast') await this.#pause(this.#fastGapMs - (Date.now() - began));
        await this.#sleep(which, this.#intervalMs - (Date.now() - began));
      }
    }
  }

  async #cycle(which: 'fast' | 'http'): Promise<RefreshResult> {
    const c = this.#opts.config;
    const common = {
      ipList: [], config: c, logger: this.#opts.logger, signal: this.#opts.signal,
      // The refresh's own status files belong to `cowrie-enrich refresh`; live mode reports in follow.json.
      status: new StatusEmitter({}),
    };
    const run: RefreshOptions = which === 'fast'
      ? { ...common, sessions: 'skip', files: 'skip', ips: this.#batchIps, live: { defer: this.#httpIpSources } }
      : {
        ...common, sessions: 'all', files: this.#sources.includes('virustotal') && !c.offline ? LIVE_FILES_PER_CYCLE : 'skip',
        // With every source's quota spent today, the pending IPs are not rewritten every cycle for nothing.
        ips: this.#httpAskable.some((n) => this.#quotaSpentOn.get(n) !== utcDay()) ? this.#batchIps : 'skip',
        live: { onlyPending: this.#httpIpSources }, sessionsWaitFor: this.#httpAskable,
      };
    const r = await refresh(this.#store, run);
    this.#figures.cycles++;
    this.#figures.lastCycleAt = Date.now();
    Object.assign(this.#figures.quotaLeft, r.ips?.quotaLeft ?? {});
    for (const [name, left] of Object.entries(r.ips?.quotaLeft ?? {})) if (left === 0 && this.#httpAskable.includes(name)) this.#quotaSpentOn.set(name, utcDay());
    await this.#updateQueue();
    this.#opts.onCycle?.(r);
    return r;
  }

  async #updateQueue(): Promise<void> {
    const queue = await countIpsWaiting(this.#store.db, this.#ipSources);
    if (this.#sources.includes('virustotal')) queue.virustotal = await countFilesWaiting(this.#store.db);
    this.#figures.queue = queue;
  }

  /** A plain wait (nothing wakes it but a stop). */
  #pause(ms: number): Promise<void> {
    if (ms <= 0 || this.#opts.signal.aborted) return Promise.resolve();
    return new Promise((res) => {
      const timer = setTimeout(done, ms);
      const signal = this.#opts.signal;
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        res();
      }
      signal.addEventListener('abort', done);
    });
  }

  #nudge(which: 'fast' | 'http'): void {
    if (this.#wake[which]) this.#wake[which]!();
    else this.#woken[which] = true;
  }

  #sleep(which: 'fast' | 'http', ms: number): Promise<void> {
    const woken = this.#woken[which];
    this.#woken[which] = false;
    if (woken || ms <= 0 || this.#opts.signal.aborted || (which === 'fast' && this.#newIps > 0)) return Promise.resolve();
    return new Promise((res) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake[which] = null;
        res();
      };
      const timer = setTimeout(done, ms);
      this.#wake[which] = done;
    });
  }
}
