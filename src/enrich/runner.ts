/**
 * Everything around a source's lookup (docs/ARCHITECTURE.md, "The runner"): the rate limiter
 * (at this worker's share of the declared rate, shared-limits.ts), quota gate and retry policy
 * built from the source's declared limits; the cache keyed by
 * (source, key) with its TTLs; typed stop rules (key rejected → off for the run; daily quota
 * spent → stopped for the day; N keys failing in a row → stopped, the rest pending); pending
 * markers for whatever was not asked; per-source counters; Ctrl-C (a soft stop, then a hard one)
 * with close() in finally. Sources only build requests and read answers.
 */
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { getCached } from '../store/cache-repo.js';
import type { DialectAdapter } from '../store/store.js';
import { isoMicros } from '../store/time.js';
import { AnswerBuffer, fromCache } from './answer-buffer.js';
import { databaseQuota, type DatabaseQuota } from './quota.js';
import { callThrottled, runPool, SlidingWindowLimiter } from './rate-limit.js';
import { startSharedRate } from './shared-limits.js';
import type { CallOutcome, HttpAnswer, LookupSummary, OnResult } from './rate-limit.js';
import { keyNoun, type HttpHandle, type Source, type SourceLimits } from './sources/source.js';
import type { QuotaGate, SourceResult } from './sources/types.js';

/** After Ctrl-C, how long requests already sent get to finish before they are abandoned. */
export const STOP_GRACE_MS = 2000;

const UNLIMITED: QuotaGate = { tryConsume: async () => true, remaining: async () => Number.POSITIVE_INFINITY };

export interface HttpEngineOptions {
  /** Extra margin on the rate window, for caution. */
  windowMarginMs?: number;
  quota?: QuotaGate;
  logger?: Logger;
  /** Status of a key whose retries ran out: 'error' (default) or 'pending'. */
  failedStatus?: 'error' | 'pending';
  /** True once the run is being stopped (Ctrl-C): no new request goes out. */
  interrupted?: () => boolean;
}

/** A source's HTTP protocol driven under its limits; no database. One per run. */
export interface HttpEngine<V> {
  /** HTTP requests sent so far (retries included). */
  readonly requests: number;
  /** The sliding window every request goes through (a shared rate sets its limit to this worker's share). */
  readonly limiter: SlidingWindowLimiter;
  lookup(keys: string[], onResult: OnResult<V>, signal?: AbortSignal): Promise<LookupSummary>;
}

type SourceFacts = Pick<Source, 'title' | 'keys'>;

export function createHttpEngine<V>(source: SourceFacts, handle: HttpHandle<V>, limits: SourceLimits, o: HttpEngineOptions = {}): HttpEngine<V> {
  const { title } = source;
  const noun = keyNoun(source.keys);
  const logger = o.logger ?? silentLogger;
  const quota = o.quota ?? UNLIMITED;
  const limiter = new SlidingWindowLimiter({ limit: limits.rate.perWindow, windowMs: limits.rate.windowMs + (o.windowMarginMs ?? 0) });
  const secrets = handle.secrets.filter((s) => s.length > 0);
  const redact = (text: string): string => secrets.reduce((t, s) => t.split(s).join('***'), text);
  // Stops outlive one lookup() call: a rejected key or a spent quota holds for the whole run.
  let authError: string | undefined;
  let quotaExhausted = false;
  let requests = 0;
  const credential = handle.credential ?? 'the API key';
  const stopReason = (): string =>
    authError ? `${title} off for this run: ${credential.replace(/^the /, '')} rejected` : quotaExhausted ? `${title} daily quota spent` : `${title}: run stopped before asking`;

  async function lookup(keys: string[], onResult: OnResult<V>, signal?: AbortSignal): Promise<LookupSummary> {
    let sent = 0;
    let pending = 0;
    const wasExhausted = quotaExhausted;
    const deliver = async (r: SourceResult<V>): Promise<void> => {
      if (r.status === 'pending') pending++;
      if (handle.version) r.version = handle.version;
      if (r.reason) r.reason = redact(r.reason);
      await onResult(r);
    };
    const sendable: string[] = [];
    for (const key of new Set(keys)) {
      const bad = handle.invalid?.(key);
      if (bad) {
        await deliver({ key, status: 'error', value: null, fetchedAt: new Date().toISOString(), ttlSeconds: 0, reason: bad });
        continue;
      }
      const local = handle.local?.(key);
      if (local) await deliver({ ...local, local: true });
      else sendable.push(key);
    }
    const settle = async (batch: string[], outcome: CallOutcome): Promise<void> => {
      switch (outcome.kind) {
        case 'done':
          // The provider's own count says today is spent: no further request (its answer still counts).
          if (handle.remaining?.(outcome.answer) === 0) quotaExhausted = true;
          // Delivered together, so the caller can store a whole batch's answers in one write.
          await Promise.all(handle.read(batch, outcome.answer).map(deliver));
          return;
        case 'failed':
          for (const key of batch) await deliver(result(key, o.failedStatus ?? 'error', `${title}: ${outcome.reason}`));
          return;
        case 'auth':
          if (!authError) {
            authError = `${title} rejected ${credential} (HTTP ${outcome.answer.status}${handle.detail?.(outcome.answer) ?? ''})`;
            logger.error(`${authError}; ${title} is off for the rest of this run`);
          }
          break;
        case 'quota':
          quotaExhausted = true;
          break;
        case 'stopped':
          break;
      }
      for (const key of batch) await deliver({ ...result(key, 'pending', stopReason()), stopped: true });
    };
    const batches: string[][] = [];
    for (let i = 0; i < sendable.length; i += limits.batchSize) batches.push(sendable.slice(i, i + limits.batchSize));
    await runPool(batches, limits.concurrency, async (batch, s) => {
      const what = batch.length === 1 ? batch[0] : `batch of ${batch.length} ${noun}`;
      const req = handle.request(batch);
      const outcome = await callThrottled({
        limiter, quota, quotaUnits: 1,
        retries: limits.retries, throttleRetries: limits.throttleRetries, backoffMs: limits.backoffMs,
        retryOnlyWhenFree: limits.retryOnlyWhenFree, maxWaitMs: limits.maxRetryAfterMs, timeoutMs: limits.timeoutMs,
        signal: s,
        isStopped: () => authError !== undefined || quotaExhausted || (o.interrupted?.() ?? false),
        onSend: () => {
          sent++;
          requests++;
        },
        send: (rs) => fetch(req.url, { method: req.method ?? 'GET', headers: req.headers, body: req.body, redirect: 'error', signal: rs }),
        judge: (a: HttpAnswer) => handle.judge(a),
        onRetry: (reason, waitMs) => logger.debug(redact(`${title} ${what}: ${reason}; retrying in ${waitMs} ms`)),
      });
      await settle(batch, outcome);
    }, signal);
    if (quotaExhausted && !wasExhausted) logger.warn(`${title} daily quota spent; ${pending} ${noun} left pending for the next run`);
    return { sent, authError, quotaExhausted, pending };
  }

  return {
    lookup,
    limiter,
    get requests() {
      return requests;
    },
  };
}

function result<V>(key: string, status: SourceResult<V>['status'], reason: string): SourceResult<V> {
  return { key, status, value: null, fetchedAt: new Date().toISOString(), ttlSeconds: 0, reason };
}

/** Per-source counters, for the status files and the run's result. */
export interface SourceCounters {
  requests: number;
  /** Answers the source gave this run (paid): hits + misses. */
  answers: number;
  hits: number;
  misses: number;
  /** Answered here without a request (not paid, not cached). */
  localAnswers: number;
  /** Keys the source failed for (retries used up): pending for the next run, errors of this one. */
  failed: number;
  cacheHits: number;
}

/** How a source's run ended, typed: callers word their own lines from it, never the reverse. */
export interface SourceRunOutcome {
  /** Why it stopped asking before the end, if it did. */
  stop: 'auth' | 'quota' | 'failures' | 'interrupted' | null;
  /** Failed for the whole run (exit 1): key rejected, N in a row, or asked and answered nothing. */
  failedForRun: boolean;
  /** Asked, failed for some and answered none (not already a stop): the caller says so. */
  answeredNone: boolean;
  lastFailure: string;
}

export interface SourceRunOptions<V> {
  db: DialectAdapter;
  source: Source<V>;
  handle: HttpHandle<V>;
  limits: SourceLimits;
  keys: string[];
  logger: Logger;
  signal?: AbortSignal;
  /** Told of each result once it is committed to the cache, one at a time, in arrival order. */
  onResult?: (r: SourceResult<V>) => void | Promise<void>;
  windowMarginMs?: number;
}

export interface SourceRun<V> {
  readonly source: Source<V>;
  /** Waits for these keys' results (every key gets one, so this always settles). */
  resultsFor(keys: string[]): Promise<Map<string, SourceResult<V>>>;
  counts(): SourceCounters;
  /**
   * Waits for the end, flushes the cache, gives back unused quota and closes the handle.
   * `stop`: send no new request first (the caller has what it needs, or is interrupted).
   */
  finish(stop?: boolean): Promise<SourceRunOutcome>;
  /** Calls left today (null: no daily quota). */
  quotaLeft(): Promise<number | null>;
}

/**
 * Start asking `source` about `keys` at once (in the background): fresh cache entries first, then
 * the network under the declared limits. Every paid answer is committed to enrichment_cache
 * before it is counted or handed on, so a crash never pays for it twice.
 */
export function startSourceRun<V>(o: SourceRunOptions<V>): SourceRun<V> {
  const { db, source, handle, limits, logger } = o;
  const noun = keyNoun(source.keys);
  const counts: SourceCounters = { requests: 0, answers: 0, hits: 0, misses: 0, localAnswers: 0, failed: 0, cacheHits: 0 };
  const outcome: SourceRunOutcome = { stop: null, failedForRun: false, answeredNone: false, lastFailure: '' };
  // Quota reserved a second's worth at a time (1 to 100): one counter write per block, not per call.
  const block = Math.max(1, Math.min(100, Math.floor((limits.rate.perWindow * 1000) / limits.rate.windowMs)));
  const quota: DatabaseQuota | null = limits.dailyQuota === null ? null : databaseQuota(db, source.name, limits.dailyQuota, block);
  const results = new Map<string, SourceResult<V>>();
  const waiters = new Map<string, () => void>();
  const buffer = new AnswerBuffer(db, source.name);
  // Hard stop (an outage, or the grace after Ctrl-C ran out): in-flight requests are abandoned.
  const hard = new AbortController();
  // Soft stop (Ctrl-C): no new request goes out; those in flight finish and are stored.
  let stopping = o.signal?.aborted ?? false;
  const onSignal = () => {
    stopping = true;
    setTimeout(() => hard.abort(o.signal?.reason), STOP_GRACE_MS).unref();
  };
  o.signal?.addEventListener('abort', onSignal, { once: true });
  const engine = createHttpEngine(source, handle, limits, {
    quota: quota ?? undefined, logger, windowMarginMs: o.windowMarginMs, interrupted: () => stopping,
  });
  const deliver = (r: SourceResult<V>) => {
    results.set(r.key, r);
    const w = waiters.get(r.key);
    if (w) {
      waiters.delete(r.key);
      w();
    }
  };
  // Results are handed on one at a time, in arrival order, each after its cache write.
  let chain: Promise<void> = Promise.resolve();
  const handOn = (r: SourceResult<V>, committed: Promise<void>): Promise<void> => {
    if (!o.onResult) return committed.then(() => deliver(r));
    const onResult = o.onResult;
    chain = chain.then(() => committed).then(async () => {
      await onResult(r);
      deliver(r);
    });
    return chain;
  };
  let failedInRow = 0;
  const done = (async () => {
    const cached = await getCached<V>(db, source.name, o.keys);
    counts.cacheHits = cached.size;
    for (const [, e] of cached) {
      if (o.onResult) await handOn(fromCache(e), Promise.resolve());
      else deliver(fromCache(e));
    }
    const toAsk = o.keys.filter((k) => !cached.has(k));
    if (!toAsk.length) return;
    // The declared rate is for every worker on the database together: this run asks at its share.
    const shared = startSharedRate({ db, service: source.name, perWindow: limits.rate.perWindow, limiter: engine.limiter, title: source.title, logger });
    const summary = await engine.lookup(toAsk, (r) => {
      if (r.local) counts.localAnswers++;
      else if (r.status === 'hit' || r.status === 'miss') {
        counts.answers++;
        if (r.status === 'hit') counts.hits++;
        else counts.misses++;
        failedInRow = 0;
      } else if (r.status === 'error' || (r.status === 'pending' && !r.stopped)) {
        // Retries used up (5xx, timeouts): owed to the next run, and an error of this one.
        r = { ...r, status: 'error' };
        counts.failed++;
        outcome.lastFailure = r.reason ?? '';
        // An outage: stop asking rather than retry every key of the run against a failing service.
        if (++failedInRow === limits.maxFailuresInRow && !outcome.stop) {
          logger.error(`${source.title} failed for ${failedInRow} ${noun} in a row (${r.reason}): not asking it again in this run; the rest stays pending`);
          outcome.stop = 'failures';
          outcome.failedForRun = true;
          hard.abort();
        }
      }
      return handOn(r, buffer.add(r));
    }, hard.signal).finally(() => shared.close());
    if (summary.authError) {
      outcome.stop = 'auth';
      outcome.failedForRun = true;
    } else if (counts.failed > 0 && counts.answers === 0 && !outcome.stop) {
      // Failed for the whole run, however few keys it had (fewer than the in-a-row rule needs).
      outcome.answeredNone = true;
      outcome.failedForRun = true;
    }
    if (summary.quotaExhausted) {
      outcome.stop ??= 'quota';
      // The provider (or our count) says today is spent: recorded for every process on the database.
      await quota?.exhaust().catch(() => {});
    }
    if (o.signal?.aborted && !outcome.stop) outcome.stop = 'interrupted';
  })();
  const settled = done.catch((err: unknown) => {
    // An abandoned request (outage stop, Ctrl-C grace over) is not an error of its own.
    if (hard.signal.aborted) return;
    throw err;
  }).finally(async () => {
    await chain.catch(() => {});
    // Anything left unanswered (a stop, an interruption) stays pending for the next run.
    for (const k of o.keys) {
      if (!results.has(k)) deliver({ key: k, status: 'pending', value: null, fetchedAt: isoMicros(new Date()), ttlSeconds: 0, reason: 'not asked', stopped: true });
    }
  });
  settled.catch(() => {});
  return {
    source,
    async resultsFor(keys) {
      await Promise.all(keys.map((k) => (results.has(k) ? null : new Promise<void>((r) => waiters.set(k, r)))));
      return new Map(keys.map((k) => [k, results.get(k)!]));
    },
    counts: () => ({ ...counts, requests: engine.requests }),
    async finish(stop = true) {
      if (stop) stopping = true;
      try {
        await settled;
      } finally {
        o.signal?.removeEventListener('abort', onSignal);
        await buffer.flush();
        await quota?.close();
        handle.close();
      }
      return outcome;
    },
    quotaLeft: async () => (quota ? quota.remaining() : null),
  };
}

/** One line for a source that answered none of the keys it was asked (exit 1). */
export function answeredNoneLine(source: Pick<Source, 'title' | 'keys'>, c: SourceCounters, o: SourceRunOutcome): string {
  return `${source.title} answered none of the ${keyNoun(source.keys)} asked (${c.failed} failed; last: ${o.lastFailure}); they stay pending for the next run`;
}
