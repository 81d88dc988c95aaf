import { putCached, type CacheEntry } from '../store/cache-repo.js';
import type { DialectAdapter } from '../store/store.js';
import type { SourceResult } from './sources/types.js';

/**
 * Paid answers go to enrichment_cache as they arrive (a crash never pays twice), in small
 * batches so a fast source does not cost one transaction per answer.
 */
export class AnswerBuffer {
  #pending: CacheEntry[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  readonly #db: DialectAdapter;
  readonly #service: string;
  readonly #maxDelayMs: number;

  constructor(db: DialectAdapter, service: string, maxDelayMs = 100) {
    this.#db = db;
    this.#service = service;
    this.#maxDelayMs = maxDelayMs;
  }

  add(r: SourceResult<unknown>): void {
    if ((r.status !== 'hit' && r.status !== 'miss') || r.ttlSeconds <= 0) return;
    this.#pending.push({ key: r.key, value: r.value, fetchedAt: r.fetchedAt, ttlSeconds: r.ttlSeconds, version: r.version });
    if (this.#pending.length >= 200) void this.flush();
    else if (!this.#timer) this.#timer = setTimeout(() => void this.flush(), this.#maxDelayMs);
  }

  flush(): Promise<void> {
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = null; }
    const rows = this.#pending;
    this.#pending = [];
    if (rows.length) {
      this.#flushing = this.#flushing.then(() => this.#db.transaction((tx) => putCached(this.#db, tx, this.#service, rows)));
    }
    return this.#flushing;
  }
}

/** A cached answer as a source result (for merging). */
export function fromCache<V>(e: CacheEntry<V>, status: 'hit' | 'miss' = e.value === null ? 'miss' : 'hit'): SourceResult<V> {
  return { key: e.key, status, value: e.value, fetchedAt: e.fetchedAt, ttlSeconds: e.ttlSeconds, ...(e.version ? { version: e.version } : {}) };
}
