import type { QuotaGate } from '../../src/enrich/sources/types.js';

/** Test-only quota for the client unit tests; the real one counts in the database (src/enrich/quota.ts). */
export class MemoryQuota implements QuotaGate {
  constructor(public left = Number.POSITIVE_INFINITY) {}
  async tryConsume(n: number): Promise<boolean> {
    if (this.left < n) return false;
    this.left -= n;
    return true;
  }
  async remaining(): Promise<number> {
    return this.left;
  }
}
