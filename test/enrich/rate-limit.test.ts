import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseRetryAfter, runPool, sleep, SlidingWindowLimiter } from '../../src/enrich/rate-limit.js';
import { maxInWindow } from '../helpers/world.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('SlidingWindowLimiter', () => {
  afterEach(() => vi.restoreAllMocks());

  it('never grants more than `limit` in any window, across concurrent and late callers', async () => {
    const limiter = new SlidingWindowLimiter({ limit: 20, windowMs: 200 });
    const times: number[] = [];
    // begin()/end(): the slot is stamped when released, after the caller saw the time. So the
    // property holds for the times the caller observes even when a loaded machine delays
    // continuations (acquire() stamps at grant time, which a test cannot observe exactly).
    const take = async (): Promise<void> => {
      const end = await limiter.begin();
      times.push(performance.now());
      end();
    };
    const first = Array.from({ length: 70 }, take);
    await sleep(130);
    const late = Array.from({ length: 30 }, take);
    await Promise.all([...first, ...late]);
    expect(times).toHaveLength(100);
    expect(maxInWindow(times, 200)).toBeLessThanOrEqual(20);
  });

  it('grants the first `limit` callers at once and uses each window fully', async () => {
    const limiter = new SlidingWindowLimiter({ limit: 5, windowMs: 150 });
    let done = 0;
    const all = Array.from({ length: 12 }, () => limiter.acquire().then(() => void done++));
    await tick();
    expect(done).toBe(5);
    await Promise.all(all);
    expect(done).toBe(12);
  });

  it('serves waiters first in, first out', async () => {
    const limiter = new SlidingWindowLimiter({ limit: 3, windowMs: 60 });
    const order: number[] = [];
    await Promise.all(Array.from({ length: 15 }, (_, i) => limiter.acquire().then(() => order.push(i))));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('keeps at most one timer for a long queue', async () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const limiter = new SlidingWindowLimiter({ limit: 10, windowMs: 50 });
    await Promise.all(Array.from({ length: 100 }, () => limiter.acquire()));
    // One timer per window (plus a rare early-fire re-arm), not one per waiter.
    expect(spy.mock.calls.length).toBeLessThan(30);
  });

  it('penalise() pauses every caller, including ones with free slots', async () => {
    const limiter = new SlidingWindowLimiter({ limit: 100, windowMs: 1000 });
    await limiter.acquire();
    const start = performance.now();
    limiter.penalise(150);
    const waited = await Promise.all(
      Array.from({ length: 3 }, async () => {
        await limiter.acquire();
        return performance.now() - start;
      }),
    );
    for (const w of waited) expect(w).toBeGreaterThanOrEqual(149);
  });

  it('drops an aborted waiter without spending a slot, and rejects with the reason', async () => {
    const limiter = new SlidingWindowLimiter({ limit: 1, windowMs: 100 });
    await limiter.acquire();
    const ac = new AbortController();
    const b = limiter.acquire(ac.signal);
    const c = limiter.acquire();
    expect(limiter.waiting).toBe(2);
    ac.abort(new Error('stop B'));
    await expect(b).rejects.toThrow('stop B');
    await c;
    expect(limiter.waiting).toBe(0);
    await expect(limiter.acquire(AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });

  it('begin() holds a slot until end() and counts the window from the end', async () => {
    const limiter = new SlidingWindowLimiter({ limit: 2, windowMs: 100 });
    const endA = await limiter.begin();
    await limiter.begin();
    let third = 0;
    const c = limiter.acquire().then(() => (third = performance.now()));
    // Both slots are in use; nothing frees one but an end(), however long we wait.
    await sleep(150);
    expect(third).toBe(0);
    const ended = performance.now();
    endA();
    endA();
    await c;
    expect(third - ended).toBeGreaterThanOrEqual(99);
  });

  it('setLimit(): lowering holds for new grants, raising serves waiters at once, 0 grants nothing', async () => {
    const limiter = new SlidingWindowLimiter({ limit: 4, windowMs: 60_000 });
    await limiter.acquire();
    await limiter.acquire();
    // Two in the window already: a limit of 2 leaves nothing for now.
    limiter.setLimit(2);
    expect(limiter.limit).toBe(2);
    let granted = 0;
    const waiting = [limiter.acquire().then(() => void granted++), limiter.acquire().then(() => void granted++)];
    await tick();
    expect(granted).toBe(0);
    limiter.setLimit(3);
    await tick();
    expect(granted).toBe(1);
    limiter.setLimit(0);
    limiter.setLimit(4);
    await Promise.all(waiting);
    expect(granted).toBe(2);
    expect(() => limiter.setLimit(-1)).toThrow(RangeError);
  });

  it('setLimit(n, until): after `until` nothing is granted until the limit is set again', async () => {
    const limiter = new SlidingWindowLimiter({ limit: 10, windowMs: 10 });
    limiter.setLimit(10, performance.now() + 30);
    await limiter.acquire();
    await sleep(60);
    let granted = false;
    const late = limiter.acquire().then(() => void (granted = true));
    await sleep(60);
    // The window is long empty, yet the limit was not confirmed: the caller still waits.
    expect(granted).toBe(false);
    expect(limiter.tryBegin()).toBeNull();
    limiter.setLimit(10, performance.now() + 1000);
    await late;
    expect(granted).toBe(true);
  });

  it('adopt(): a run continuing another counts the slots still in the earlier window', async () => {
    const earlier = new SlidingWindowLimiter({ limit: 3, windowMs: 60_000 });
    for (let i = 0; i < 2; i++) await earlier.acquire();
    const next = new SlidingWindowLimiter({ limit: 3, windowMs: 60_000 });
    next.adopt(earlier);
    const end = next.tryBegin();
    expect(end).not.toBeNull();
    expect(next.tryBegin()).toBeNull();
  });

  it('rejects nonsense limits', () => {
    expect(() => new SlidingWindowLimiter({ limit: 0, windowMs: 100 })).toThrow(RangeError);
    expect(() => new SlidingWindowLimiter({ limit: 1, windowMs: 0 })).toThrow(RangeError);
  });
});

describe('helpers', () => {
  it('parseRetryAfter reads seconds and HTTP dates', () => {
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter('0.5', now)).toBe(500);
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
  });

  it('runPool bounds concurrency and rethrows the first failure after stopping the rest', async () => {
    let active = 0;
    let peak = 0;
    const seen: number[] = [];
    await runPool(Array.from({ length: 20 }, (_, i) => i), 4, async (i) => {
      active++;
      peak = Math.max(peak, active);
      await sleep(2);
      seen.push(i);
      active--;
    });
    expect(peak).toBe(4);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));

    const started: number[] = [];
    await expect(
      runPool(Array.from({ length: 50 }, (_, i) => i), 2, async (i) => {
        started.push(i);
        if (i === 3) throw new Error('boom');
        await sleep(1);
      }),
    ).rejects.toThrow('boom');
    expect(started.length).toBeLessThan(10);
  });
});
