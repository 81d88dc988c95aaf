/**
 * A sliding-window rate limiter shared by every concurrent caller of one API.
 *
 * Guarantee: in any interval of `windowMs`, at most `limit` slots are in use. A slot taken
 * with acquire() is stamped with its grant time. A slot taken with begin() stays in use
 * until its end() is called and is then stamped with that time: a request reaches the server
 * somewhere between being sent and its answer arriving, so counting the window from the
 * answer makes "at most `limit` per window" hold as the server sees it, whatever the latency.
 * Waiters are served strictly first in, first out; at most one timer is pending at a time.
 *
 * The limit can change while in use (setLimit: a worker's share of a rate shared with other
 * processes, src/enrich/shared-limits.ts); slots already granted stay counted.
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { SourceResult } from './sources/types.js';

export interface SlidingWindowLimiterOptions {
  /** Most slots in use in any window. */
  limit: number;
  /** Window length in milliseconds. */
  windowMs: number;
}

interface Slot {
  /** performance.now() ms: grant time, or end time once ended. */
  t: number;
  /** Taken with begin() and not ended yet: counts as in use now. */
  open: boolean;
}

interface Waiter {
  hold: boolean;
  resolve: (slot: Slot) => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class SlidingWindowLimiter {
  readonly windowMs: number;
  #limit: number;
  /** performance.now() ms after which no slot is granted until the next setLimit(). */
  #validUntil = Number.POSITIVE_INFINITY;
  /** Open slots plus closed slots younger than the window. */
  #slots: Slot[] = [];
  readonly #queue: Waiter[] = [];
  #timer: NodeJS.Timeout | null = null;
  #pausedUntil = 0;

  constructor(options: SlidingWindowLimiterOptions) {
    if (!Number.isFinite(options.limit) || options.limit < 1) throw new RangeError('limit must be at least 1');
    if (!Number.isFinite(options.windowMs) || options.windowMs <= 0) throw new RangeError('windowMs must be positive');
    this.#limit = Math.floor(options.limit);
    this.windowMs = options.windowMs;
  }

  /** Most slots in use in any window, as now set. */
  get limit(): number {
    return this.#limit;
  }

  /**
   * Change the limit (0: grant nothing). Lowering holds for every grant from now on (slots already
   * granted stay counted, so the window drains to the new limit); raising serves waiters at once.
   * `until` (performance.now() ms): the limit holds until then, and afterwards nothing is granted
   * until the next call, so a limit nobody confirms in time cannot outlive what it was based on.
   */
  setLimit(limit: number, until = Number.POSITIVE_INFINITY): void {
    if (!Number.isFinite(limit) || limit < 0) throw new RangeError('limit must be 0 or more');
    this.#limit = Math.floor(limit);
    this.#validUntil = until;
    if (this.#queue.length > 0) this.#schedule();
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Resolves when the caller may act once (the slot is stamped now); rejects with the signal's reason on abort. */
  async acquire(signal?: AbortSignal): Promise<void> {
    await this.#take(false, signal);
  }

  /**
   * Like acquire(), but the slot stays in use until the returned end() is called (call it
   * once the answer or the failure is in; extra calls do nothing). The window then counts
   * from that moment.
   */
  async begin(signal?: AbortSignal): Promise<() => void> {
    const slot = await this.#take(true, signal);
    return () => {
      if (!slot.open) return;
      slot.open = false;
      slot.t = performance.now();
      if (this.#queue.length > 0) this.#schedule();
    };
  }

  /**
   * begin() only if a slot is free right now and nobody is waiting; null otherwise (nothing taken).
   */
  tryBegin(): (() => void) | null {
    const now = performance.now();
    if (this.#queue.length > 0 || this.#wait(now) > 0) return null;
    const slot = this.#grant(now, true);
    return () => {
      if (!slot.open) return;
      slot.open = false;
      slot.t = performance.now();
      if (this.#queue.length > 0) this.#schedule();
    };
  }

  /** Slots still counted (all ended: a finished run), and in how many ms the last of them leaves the window. */
  inWindow(): { slots: number; drainMs: number } {
    const now = performance.now();
    this.#slots = this.#slots.filter((s) => s.open || s.t > now - this.windowMs);
    if (this.#slots.some((s) => s.open)) return { slots: this.#slots.length, drainMs: this.windowMs };
    const last = Math.max(...this.#slots.map((s) => s.t), Number.NEGATIVE_INFINITY);
    return { slots: this.#slots.length, drainMs: this.#slots.length ? Math.ceil(last + this.windowMs - now) : 0 };
  }

  /**
   * Count `earlier`'s slots still in its window as this limiter's own: a run that continues an
   * earlier run's rate (the same worker, one run after another) inherits the requests the server
   * still counts, instead of starting from an empty window.
   */
  adopt(earlier: SlidingWindowLimiter): void {
    const horizon = performance.now() - this.windowMs;
    this.#slots.push(...earlier.#slots.filter((s) => s.open || s.t > horizon));
  }

  /**
   * Pause every caller for `ms` from now (e.g. a 429 with Retry-After). Pauses do not
   * shorten each other: the later end wins.
   */
  penalise(ms: number): void {
    if (!(ms > 0)) return;
    const until = performance.now() + ms;
    if (until <= this.#pausedUntil) return;
    this.#pausedUntil = until;
    if (this.#queue.length > 0) this.#schedule();
  }

  #take(hold: boolean, signal?: AbortSignal): Promise<Slot> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    // Fast path keeps FIFO order: only when nobody is queued ahead.
    const now = performance.now();
    if (this.#queue.length === 0 && this.#wait(now) <= 0) return Promise.resolve(this.#grant(now, hold));
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = { hold, resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.#queue.indexOf(waiter);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(signal.reason);
          if (i === 0) this.#schedule();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#queue.push(waiter);
      if (this.#queue.length === 1) this.#schedule();
    });
  }

  /** Milliseconds until the next grant (<= 0: now; Infinity: only an end() can free a slot). */
  #wait(now: number): number {
    const horizon = now - this.windowMs;
    this.#slots = this.#slots.filter((s) => s.open || s.t > horizon);
    let wait = this.#pausedUntil - now;
    // An expired limit grants nothing: only the next setLimit() frees a slot.
    const limit = now < this.#validUntil ? this.#limit : 0;
    const excess = this.#slots.length - limit + 1;
    if (excess > 0) {
      const closed = this.#slots.filter((s) => !s.open).map((s) => s.t);
      if (closed.length < excess) return Number.POSITIVE_INFINITY;
      closed.sort((a, b) => a - b);
      wait = Math.max(wait, closed[excess - 1] + this.windowMs - now);
    }
    return wait;
  }

  #grant(now: number, hold: boolean): Slot {
    const slot: Slot = { t: now, open: hold };
    this.#slots.push(slot);
    return slot;
  }

  #schedule(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#pump();
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const now = performance.now();
      const wait = this.#wait(now);
      if (wait === Number.POSITIVE_INFINITY) return;
      if (wait > 0) {
        // Timers may fire a fraction early; the loop re-checks and re-arms if so.
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#pump();
        }, Math.ceil(wait));
        return;
      }
      const waiter = this.#queue.shift()!;
      if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(this.#grant(now, waiter.hold));
    }
  }
}

/** Wait `ms`, or reject with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Parse an HTTP Retry-After value (delta seconds or an HTTP date) into milliseconds;
 * null when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const when = Date.parse(text);
  if (Number.isNaN(when)) return null;
  return Math.max(0, when - now);
}

/** What a client's lookup() reports once every key has had its onResult. */
export interface LookupSummary {
  /** HTTP requests sent, retries included. */
  sent: number;
  /** Set when the key was rejected; already logged once as an ERROR line. */
  authError?: string;
  /** The daily quota ran out (our count or the server's 429); already logged once. */
  quotaExhausted: boolean;
  /** Results delivered with status 'pending'. */
  pending: number;
}

/** Called once per unique key, as each answer arrives (in any order). */
export type OnResult<V> = (result: SourceResult<V>) => void | Promise<void>;

/** An HTTP answer read in full. */
export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** How a client classifies one HTTP answer. */
export type AnswerVerdict =
  /** A final answer for this call; the client interprets it. */
  | { kind: 'done' }
  /** The API key was rejected: stop every call of the run. */
  | { kind: 'auth' }
  /** The daily quota is spent: stop every call of the run. */
  | { kind: 'quota' }
  /** Too fast: pause every caller (Retry-After when given), then retry. */
  | { kind: 'throttle'; waitMs: number | null }
  /** A passing failure (5xx): retry this call after a backoff. */
  | { kind: 'transient'; reason: string };

export type CallOutcome =
  | { kind: 'done'; answer: HttpAnswer }
  | { kind: 'auth'; answer: HttpAnswer }
  | { kind: 'quota' }
  /** The run was stopped (auth or quota) before this call was sent. */
  | { kind: 'stopped' }
  /** Retries used up; `reason` is one line without secrets. */
  | { kind: 'failed'; reason: string };

export interface ThrottledCallOptions {
  limiter: SlidingWindowLimiter;
  /** Reserved once per call (not per retry), right before the first request goes out. */
  quota: { tryConsume(n: number): Promise<boolean> };
  quotaUnits?: number;
  /** Extra attempts after a transient failure (5xx, network error, timeout). */
  retries: number;
  /** Extra attempts after a rate-limit answer. */
  throttleRetries: number;
  /** First backoff; doubles on each further failure. */
  backoffMs: number;
  /**
   * Retry a transient failure only when the limiter has a slot free at once (after the backoff),
   * never by queueing behind other calls: a slow API's failing key must not hold up the others.
   */
  retryOnlyWhenFree?: boolean;
  /** Longest Retry-After honoured; a longer one fails the call instead of stalling the run. */
  maxWaitMs: number;
  timeoutMs: number;
  /** Largest answer body read; default MAX_BODY_BYTES. */
  maxBodyBytes?: number;
  signal?: AbortSignal;
  /** True once another call stopped the run. */
  isStopped: () => boolean;
  /** Counts requests actually sent. */
  onSend: () => void;
  send: (signal: AbortSignal) => Promise<Response>;
  judge: (answer: HttpAnswer) => AnswerVerdict;
  /** Told before each wait-and-retry (for --verbose lines). */
  onRetry?: (reason: string, waitMs: number) => void;
}

/**
 * One API call through the shared limiter: waits for a slot, reserves quota, sends,
 * and retries transient failures and rate-limit answers. Rejects only when `signal` aborts.
 */
export async function callThrottled(o: ThrottledCallOptions): Promise<CallOutcome> {
  let reserved = false;
  let failures = 0;
  let throttles = 0;
  let lastFailure = '';
  for (;;) {
    if (o.isStopped()) return { kind: 'stopped' };
    let end: () => void;
    if (failures > 0 && o.retryOnlyWhenFree) {
      const free = o.limiter.tryBegin();
      if (!free) return { kind: 'failed', reason: `${lastFailure} (not retried now: no rate slot free; left for the next run)` };
      end = free;
    } else {
      end = await o.limiter.begin(o.signal);
    }
    let verdict: AnswerVerdict;
    let answer: HttpAnswer | null = null;
    try {
      if (o.isStopped()) return { kind: 'stopped' };
      if (!reserved) {
        if (!(await o.quota.tryConsume(o.quotaUnits ?? 1))) return { kind: 'quota' };
        reserved = true;
      }
      o.onSend();
      const exchange = boundedExchange(o.timeoutMs, o.signal);
      try {
        const res = await exchange.run(o.send(exchange.signal));
        answer = { status: res.status, headers: res.headers, text: await exchange.run(readBounded(res, o.maxBodyBytes ?? MAX_BODY_BYTES)) };
        verdict = o.judge(answer);
      } catch (err) {
        if (o.signal?.aborted) throw o.signal.reason;
        verdict = { kind: 'transient', reason: exchange.timedOut() ? `timed out after ${o.timeoutMs / 1000} s` : describeFetchError(err) };
      } finally {
        exchange.close();
      }
    } finally {
      // The request reached the server no later than now: the window counts from here.
      end();
    }
    switch (verdict.kind) {
      case 'done':
        return { kind: 'done', answer: answer! };
      case 'auth':
        return { kind: 'auth', answer: answer! };
      case 'quota':
        return { kind: 'quota' };
      case 'throttle': {
        throttles++;
        if (throttles > o.throttleRetries) return { kind: 'failed', reason: `still rate-limited after ${throttles} attempts` };
        const wait = verdict.waitMs ?? o.backoffMs * 2 ** (throttles - 1);
        if (wait > o.maxWaitMs) return { kind: 'failed', reason: `asked to wait ${Math.ceil(wait / 1000)} s` };
        o.onRetry?.('rate-limited (429)', wait);
        o.limiter.penalise(wait);
        break;
      }
      case 'transient': {
        failures++;
        lastFailure = verdict.reason;
        if (failures > o.retries) return { kind: 'failed', reason: `${verdict.reason} (gave up after ${failures} attempts)` };
        const wait = o.backoffMs * 2 ** (failures - 1);
        o.onRetry?.(verdict.reason, wait);
        await sleep(wait, o.signal);
        break;
      }
    }
  }
}

class DeadlineError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms / 1000} s`);
    this.name = 'TimeoutError';
  }
}

/**
 * A deadline on one whole HTTP exchange (connect, headers and body). A plain timer, kept
 * referenced, aborts the request's own controller, and every await of the exchange races that
 * abort, so a server that sends headers and then stalls the body is cut off at the deadline
 * (undici's own body timeout is 300 s). Not AbortSignal.timeout/any: a composite signal can be
 * garbage-collected with its timer under GC pressure, and then neither the deadline nor Ctrl-C
 * reaches the request.
 */
function boundedExchange(timeoutMs: number, outer?: AbortSignal): {
  signal: AbortSignal; run<T>(p: Promise<T>): Promise<T>; timedOut(): boolean; close(): void;
} {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DeadlineError(timeoutMs));
  }, timeoutMs);
  const onOuter = (): void => controller.abort(outer!.reason);
  if (outer?.aborted) onOuter();
  else outer?.addEventListener('abort', onOuter, { once: true });
  const aborted = new Promise<never>((_, reject) => {
    if (controller.signal.aborted) reject(controller.signal.reason);
    else controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
  });
  aborted.catch(() => {});
  return {
    signal: controller.signal,
    run: (p) => {
      // The losing promise must not surface as an unhandled rejection.
      p.catch(() => {});
      return Promise.race([p, aborted]);
    },
    timedOut: () => timedOut,
    close: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
      // Whatever is still open (a stalled body) is torn down with the request.
      if (!controller.signal.aborted) controller.abort(new Error('exchange closed'));
    },
  };
}

/** Largest API answer we read (a GreyNoise multi answer for 1,000 IPs is ~100 KB). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Read a response body, refusing one larger than `max` bytes (a misbehaving server must not exhaust memory). */
export async function readBounded(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) {
    await res.body.cancel();
    throw new Error(`answer of ${declared} bytes exceeds ${max}`);
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > max) throw new Error(`answer exceeds ${max} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** One line for a fetch failure: undici hides the useful part in `cause`. */
export function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (cause && typeof cause.code === 'string') return `network error ${cause.code}`;
  if (cause && typeof cause.message === 'string') return `network error: ${cause.message}`;
  return `network error: ${err instanceof Error ? err.message : String(err)}`;
}

/**
 * Run `work` over `items` with at most `concurrency` in flight, in input order of start.
 * The first rejection aborts the signal handed to the others and is rethrown once all settle.
 */
export async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, signal: AbortSignal) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const inner = new AbortController();
  // Every waiting worker listens on it (limiter queue, backoff sleep, fetch): not a leak.
  setMaxListeners(0, inner.signal);
  const onAbort = (): void => inner.abort(signal!.reason);
  if (signal?.aborted) throw signal.reason;
  signal?.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let firstError: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < items.length && !inner.signal.aborted) {
      const item = items[next++];
      try {
        await work(item, inner.signal);
      } catch (error) {
        firstError ??= { error };
        inner.abort(error);
      }
    }
  };
  try {
    const n = Math.max(1, Math.min(concurrency, items.length));
    await Promise.all(Array.from({ length: n }, worker));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (firstError) throw (firstError as { error: unknown }).error;
  if (inner.signal.aborted) throw inner.signal.reason;
}
