/**
 * The one shape every enrichment source has (see docs/ARCHITECTURE.md):
 * look up a batch of keys, return one result per key with provenance and a TTL.
 * Sources hold no database code and read no process.env; the pipeline hands
 * them config, a logger, and (for paid APIs) a QuotaGate and RateLimiter.
 */
export type ResultStatus =
  /** The source answered with data. */
  | 'hit'
  /** The source answered "nothing known" (e.g. GreyNoise 404, Cymru NA): a cacheable negative. */
  | 'miss'
  /** The lookup failed for this key this time; try again next run. */
  | 'error'
  /** Not asked this run (quota spent, source switched off); try again next run. */
  | 'pending';

export interface SourceResult<V> {
  key: string;
  status: ResultStatus;
  /** Data for 'hit'; an optional negative record for 'miss'; null otherwise. */
  value: V | null;
  /** One-line reason for 'error' / 'pending'. Never contains a secret. */
  reason?: string;
  /** ISO-8601 UTC time the answer was obtained from the source. */
  fetchedAt: string;
  /** Database build date or API version that produced the answer. */
  version?: string;
  /** How long the answer stays fresh, in seconds (0 = do not cache). */
  ttlSeconds: number;
  /**
   * Answered here without asking the source (e.g. GreyNoise for IPv6, which it cannot look up):
   * not paid for, not cached, counted apart from the source's answers.
   */
  local?: true;
  /**
   * 'pending' because the run stopped asking (key rejected, quota spent, interrupted), not because
   * this key failed: owed to the next run, but not an error of this one.
   */
  stopped?: true;
}

/** A per-UTC-day call budget shared by every process using the same database. */
export interface QuotaGate {
  /** Reserve n calls for today; false (and nothing reserved) when that would exceed the quota. */
  tryConsume(n: number): Promise<boolean>;
  /** Calls left today. */
  remaining(): Promise<number>;
}

export const DAY_SECONDS = 86_400;
