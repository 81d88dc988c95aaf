import { putCached, type CacheEntry } from '../store/cache-repo.js';
import type { DialectAdapter } from '../store/store.js';
import type { SourceResult } from './sources/types.js';

/**
 * Paid answers go to enrichment_cache before anything counts or uses them: add() resolves once
 * the answer is committed, so an answer a crash can lose is one still on its way to the database,
 * never one the run already acted on. Writes are group-committed: answers that arrive while a
 * write is in progress share the next transaction, so a fast source costs one transaction per
 * burst, not one per answer, and a slow one waits only for its own write.
 */
export class AnswerBuffer {
  #pending: CacheEntry[] = [];
  /** The write that will take #pending (not started yet), if any. */
  #next: Promise<void> | null = null;
  /** The last write scheduled (its failure already reported to its own callers). */
  #last: Promise<void> = Promise.resolve();
  readonly #db: DialectAdapter;
  readonly #service: string;

  constructor(db: DialectAdapter, service: string) {
    this.#db = db;
    this.#service = service;
  }

  /** Resolves when `r` is in the cache (at once for what is not cached: failures, local answers). */
  add(r: SourceResult<unknown>): Promise<void> {
    if ((r.status !== 'hit' && r.status !== 'miss') || r.ttlSeconds <= 0 || r.local) return Promise.resolve();
    this.#pending.push({ key: r.key, value: r.value, fetchedAt: r.fetchedAt, ttlSeconds: r.ttlSeconds, version: r.version });
    return this.#schedule();
  }

  /** Resolves when everything added so far is written. */
  flush(): Promise<void> {
    return this.#pending.length ? this.#schedule() : this.#last;
  }

  #schedule(): Promise<void> {
    if (!this.#next) {
      const write = this.#last.then(() => {
        const rows = this.#pending;
        this.#pending = [];
        this.#next = null;
        return rows.length ? this.#db.transaction((tx) => putCached(this.#db, tx, this.#service, rows)) : undefined;
      });
      this.#next = write;
      this.#last = write.catch(() => {});
    }
    return this.#next;
  }
}

/** A cached answer as a source result (for merging). */
export function fromCache<V>(e: CacheEntry<V>, status: 'hit' | 'miss' = e.value === null ? 'miss' : 'hit'): SourceResult<V> {
  return { key: e.key, status, value: e.value, fetchedAt: e.fetchedAt, ttlSeconds: e.ttlSeconds, ...(e.version ? { version: e.version } : {}) };
}
