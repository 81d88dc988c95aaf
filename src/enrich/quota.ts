import { exhaustQuota, quotaUsed, tryConsumeQuota } from '../store/cache-repo.js';
import type { SqlRunner } from '../store/store.js';
import type { QuotaGate } from './sources/types.js';

/** A provider's daily quota counted in api_quota, shared by every process on the database. */
export function databaseQuota(db: SqlRunner, service: string, dailyLimit: number): QuotaGate & { exhaust(): Promise<void> } {
  return {
    tryConsume: (n) => tryConsumeQuota(db, service, n, dailyLimit),
    remaining: async () => Math.max(0, dailyLimit - (await quotaUsed(db, service))),
    exhaust: () => exhaustQuota(db, service, dailyLimit),
  };
}
