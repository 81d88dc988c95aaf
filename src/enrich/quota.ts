import { exhaustQuota, quotaUsed, releaseQuota, tryConsumeQuota } from '../store/cache-repo.js';
import type { SqlRunner } from '../store/store.js';
import { utcDay } from '../store/time.js';
import type { QuotaGate } from './sources/types.js';

export interface DatabaseQuota extends QuotaGate {
  /** The provider said today's quota is spent (e.g. a 429 daily-limit answer): record it for every process. */
  exhaust(): Promise<void>;
  /** Give back calls reserved but not made (end of run). */
  close(): Promise<void>;
}

/**
 * A provider's daily quota counted in api_quota, shared by every process on the database.
 * Calls are reserved in blocks of up to `block` (one database write per block, not per call, so
 * a fast API is not slowed by the counter); close() returns what the run did not use. A crash
 * can strand at most one block for the rest of the UTC day.
 */
export function databaseQuota(db: SqlRunner, service: string, dailyLimit: number, block = 1): DatabaseQuota {
  let day = utcDay();
  let local = 0;
  let exhausted = false;
  let lock: Promise<unknown> = Promise.resolve();
  const reserve = async (n: number): Promise<boolean> => {
    const today = utcDay();
    if (today !== day) {
      // A new UTC day: yesterday's leftovers count against yesterday, not today.
      day = today;
      local = 0;
    }
    if (local >= n) {
      local -= n;
      return true;
    }
    if (exhausted) return false;
    // A block at a time; near the limit, whatever is left if that still covers this call.
    const need = n - local;
    const extra = Math.max(need, block);
    if (await tryConsumeQuota(db, service, extra, dailyLimit, day)) {
      local += extra - n;
      return true;
    }
    const left = dailyLimit - (await quotaUsed(db, service, day));
    if (left >= need && left < extra && (await tryConsumeQuota(db, service, left, dailyLimit, day))) {
      local += left - n;
      return true;
    }
    return false;
  };
  return {
    // Serialised: concurrent callers must not each reserve a block.
    tryConsume: (n) => {
      const p = lock.then(() => reserve(n));
      lock = p.catch(() => {});
      return p;
    },
    remaining: async () => Math.max(0, dailyLimit - (await quotaUsed(db, service)) + (day === utcDay() ? local : 0)),
    exhaust: async () => {
      exhausted = true;
      local = 0;
      await exhaustQuota(db, service, dailyLimit);
    },
    close: async () => {
      await lock;
      if (local > 0 && !exhausted && day === utcDay()) await releaseQuota(db, service, local, day);
      local = 0;
    },
  };
}
