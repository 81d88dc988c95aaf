/**
 * Limits shared by workers on one database (src/enrich/shared-limits.ts), on both dialects: the
 * shares of a rate sum to exactly the declared rate, in the global (joined, holder) order; a joiner
 * sends only once the others have lowered and drained; a leaver's share comes back to the others
 * only after its grace; a killed worker's row expires; connection slots bound connections and a
 * lost holder's slot frees at the end of its lease.
 */
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { SlidingWindowLimiter } from '../../src/enrich/rate-limit.js';
import { databaseConnectionGate, shareOf, shareTimings, startSharedRate, type SharedRate } from '../../src/enrich/shared-limits.js';
import { UserError } from '../../src/errors.js';
import { MemoryLogger, silentLogger } from '../../src/log.js';
import { leaveRateShare, liveRateShares, renewRateShare } from '../../src/store/coordination-repo.js';
import { openStore, type Store } from '../../src/store/store.js';
import { dialectCases } from '../helpers/dialects.js';
import { waitFor } from '../helpers/world.js';

describe('shareOf', () => {
  it('splits P into shares that sum to exactly P, the first P mod n getting one more', () => {
    for (let p = 1; p <= 40; p++) {
      for (let n = 1; n <= 12; n++) {
        const ranked = Array.from({ length: n }, (_, i) => `w${i}`);
        const shares = ranked.map((h) => shareOf(p, ranked, h));
        expect(shares.reduce((a, b) => a + b, 0)).toBe(p);
        expect(shares).toEqual(ranked.map((_, i) => Math.floor(p / n) + (i < p % n ? 1 : 0)));
      }
    }
    expect(shareOf(11, ['a', 'b', 'c'], 'a')).toBe(4);
    expect(shareOf(11, ['a', 'b', 'c'], 'c')).toBe(3);
    expect(shareOf(2, ['a', 'b', 'c'], 'c')).toBe(0);
    expect(shareOf(10, ['a', 'b'], 'z')).toBe(0);
  });

  it('never grows when more holders are live or the holder ranks later (so mixed readings cannot sum past P)', () => {
    for (let p = 1; p <= 30; p++) {
      for (let n = 1; n <= 8; n++) {
        for (let r = 0; r < n; r++) {
          const at = (rank: number, size: number) => shareOf(p, Array.from({ length: size }, (_, i) => `w${i}`), `w${rank}`);
          expect(at(r, n + 1)).toBeLessThanOrEqual(at(r, n));
          expect(at(r + 1, n + 1)).toBeLessThanOrEqual(at(r, n));
        }
      }
    }
  });

  it('derives every timing from the heartbeat and the window', () => {
    expect(shareTimings(1000, 250)).toEqual({ heartbeatMs: 250, ttlMs: 1750, trustMs: 500, joinWaitMs: 1500, leaveGraceMs: 1000 });
  });
});

type LimitRecord = { at: number; limit: number; until: number };

/** A real limiter that records every limit it is given, with the deadline of each. */
class RecordingLimiter extends SlidingWindowLimiter {
  readonly records: LimitRecord[] = [];
  override setLimit(limit: number, until = Number.POSITIVE_INFINITY): void {
    super.setLimit(limit, until);
    this.records.push({ at: performance.now(), limit, until });
  }
}

/** One worker's limits over time: a run's records, then those of the run that continued it (if any). */
class Timeline {
  readonly records: LimitRecord[];
  constructor(first: RecordingLimiter, next?: RecordingLimiter) {
    const cut = next?.records[0]?.at ?? Number.POSITIVE_INFINITY;
    this.records = [...first.records.filter((r) => r.at < cut), ...(next?.records ?? [])];
  }

  /** The limit in force at `t` (0 before the first record and after a deadline). */
  effective(t: number): number {
    let r: LimitRecord | undefined;
    for (const x of this.records) if (x.at <= t) r = x;
    return r && t < r.until ? r.limit : 0;
  }

  breakpoints(): number[] {
    return this.records.flatMap((r) => [r.at, r.until]).filter(Number.isFinite);
  }
}

/**
 * The property the server sees: slots granted under a limit count for one window after it is
 * lowered, so at every moment the largest limit of the last window, summed over workers, is at
 * most P. That sum only changes at a record's time or deadline, or one window later.
 */
function maxDrainedSum(workers: Timeline[], windowMs: number): number {
  const points = workers.flatMap((l) => l.breakpoints()).flatMap((b) => [b, b + windowMs]);
  let worst = 0;
  for (const t of points) {
    let sum = 0;
    for (const l of workers) {
      const inWindow = [t - windowMs, ...l.breakpoints().filter((b) => b > t - windowMs && b <= t)];
      sum += Math.max(...inWindow.map((x) => l.effective(x)));
    }
    worst = Math.max(worst, sum);
  }
  return worst;
}

const WINDOW_MS = 300;
const HEARTBEAT_MS = 100;

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] shared rate`, () => {
    let store: Store | null = null;
    const open: SharedRate[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
      await store?.close();
      store = null;
    });

    const worker = (limiter: RecordingLimiter, perWindow = 11) => {
      const s = startSharedRate({ db: store!.db, service: 'greynoise', perWindow, limiter, title: 'GreyNoise', logger: silentLogger, heartbeatMs: HEARTBEAT_MS });
      open.push(s);
      return s;
    };
    const limiter = () => new RecordingLimiter({ limit: 11, windowMs: WINDOW_MS });

    it('the repository: a fresh join, a renewal, the live ranking and a leave with grace (database clock)', async () => {
      store = await openStore(await d.newUrl());
      const db = store.db;
      expect(await renewRateShare(db, 'gn', 'b', 60_000)).toEqual({ fresh: true });
      expect(await renewRateShare(db, 'gn', 'b', 60_000)).toEqual({ fresh: false });
      expect(await renewRateShare(db, 'gn', 'a', 60_000)).toEqual({ fresh: true });
      // Same join time: ranked by holder; otherwise by join time.
      await db.run('UPDATE rate_shares SET joined_ms = 5 WHERE holder IN (?, ?)', ['a', 'b']);
      await db.run("INSERT INTO rate_shares (service, holder, joined_ms, expires_ms) VALUES ('gn', 'early', 1, 9000000000000), ('other', 'x', 1, 9000000000000)");
      expect((await liveRateShares(db, 'gn')).map((r) => r.holder)).toEqual(['early', 'a', 'b']);
      // Leaving keeps the row live for the grace, then it is gone from the live list.
      await leaveRateShare(db, 'gn', 'a', 150);
      expect((await liveRateShares(db, 'gn')).map((r) => r.holder)).toEqual(['early', 'a', 'b']);
      await waitFor(async () => !(await liveRateShares(db, 'gn')).some((r) => r.holder === 'a'), 5000, 'the leave grace to end');
      // Back after its row expired: a fresh join, ranked last.
      expect(await renewRateShare(db, 'gn', 'a', 60_000)).toEqual({ fresh: true });
      expect((await liveRateShares(db, 'gn')).map((r) => r.holder)).toEqual(['early', 'b', 'a']);
    });

    it('a worker alone gets the whole rate; joiners wait for the others to lower and drain; leavers give theirs back after the grace', async () => {
      store = await openStore(await d.newUrl());
      const [la, lb, lc] = [limiter(), limiter(), limiter()];
      const a = worker(la);
      // Nothing before the first reading, then the whole rate (alone: no join wait).
      expect(la.records[0].limit).toBe(0);
      await waitFor(() => a.share === 11, 5000, 'A alone at the full rate');
      const b = worker(lb);
      const c = worker(lc);
      await waitFor(() => a.share === 4 && b.share + c.share === 7 && b.share > 0 && c.share > 0, 10_000, 'three shares');
      // Exactly P, the extra slots to the earliest joiners.
      const ranked = (await liveRateShares(store.db, 'greynoise')).map((r) => r.holder);
      expect(ranked[0]).toBe(a.holder);
      expect([a, b, c].map((w) => w.share).sort()).toEqual([3, 4, 4]);
      expect(shareOf(11, ranked, ranked[2])).toBe(3);
      await a.close();
      await waitFor(() => b.share + c.share === 11, 10_000, 'A\'s share back to B and C');
      expect([b.share, c.share].sort()).toEqual([5, 6]);
      // At no moment did the limits in force, each counted for a window after it was lowered, exceed P.
      expect(maxDrainedSum([new Timeline(la), new Timeline(lb), new Timeline(lc)], WINDOW_MS)).toBeLessThanOrEqual(11);
    });

    it('a run following another within its grace continues the same row (no second join wait); a killed worker\'s row expires', async () => {
      store = await openStore(await d.newUrl());
      const db = store.db;
      // A worker killed a moment ago: its row is live until its TTL runs out.
      await db.run(`INSERT INTO rate_shares (service, holder, joined_ms, expires_ms) VALUES ('greynoise', 'killed', 1, ${db.nowMsSql()} + 1500)`);
      const [la, lb] = [limiter(), limiter()];
      const a = worker(la);
      await waitFor(() => a.share === 5, 5000, 'A sharing with the killed worker');
      await waitFor(() => a.share === 11, 5000, 'the killed worker\'s row to expire');
      const b = worker(lb);
      await waitFor(() => a.share === 6 && b.share === 5, 10_000, 'two shares');
      const holder = a.holder;
      await a.close();
      const logger = new MemoryLogger();
      const la2 = limiter();
      const a2 = startSharedRate({ db, service: 'greynoise', perWindow: 11, limiter: la2, title: 'GreyNoise', logger, heartbeatMs: HEARTBEAT_MS });
      open.push(a2);
      expect(a2.holder).toBe(holder);
      await waitFor(() => a2.share === 6, 10_000, 'the next run at its share');
      expect(maxDrainedSum([new Timeline(la, la2), new Timeline(lb)], WINDOW_MS)).toBeLessThanOrEqual(11);
      expect(logger.lines.filter((l) => l.startsWith('[WARNING]'))).toEqual([]);
    });
  });

  describe.skipIf(d.skip)(`[${d.name}] connection slots`, () => {
    let store: Store | null = null;
    afterEach(async () => {
      await store?.close();
      store = null;
    });

    it('at most N held at once across gates; a slot given back serves a waiter', async () => {
      store = await openStore(await d.newUrl());
      const gate = () => databaseConnectionGate({ db: store!.db, service: 'cymru', connections: 2, leaseMs: 60_000, logger: silentLogger });
      const [g1, g2] = [gate(), gate()];
      const first = await g1.acquire();
      await g2.acquire();
      let third = false;
      const waiting = g2.acquire().then((give) => {
        third = true;
        return give;
      });
      await new Promise((r) => setTimeout(r, 400));
      expect(third).toBe(false);
      const held = await store.db.query<{ holder: string | null }>("SELECT holder FROM connection_slots WHERE service = 'cymru' ORDER BY slot");
      expect(held.every((r) => r.holder !== null)).toBe(true);
      await first();
      await first(); // a second call gives nothing back twice
      const give = await waiting;
      expect(third).toBe(true);
      await give();
      const free = await store.db.query("SELECT slot FROM connection_slots WHERE service = 'cymru' AND holder IS NULL");
      expect(free).toHaveLength(1);
    });

    it('a holder that never gives its slot back (killed) loses it when the lease ends; an interrupted wait stops with exit 130', async () => {
      store = await openStore(await d.newUrl());
      const lost = databaseConnectionGate({ db: store.db, service: 'cymru', connections: 2, leaseMs: 300, logger: silentLogger });
      await lost.acquire();
      await lost.acquire();
      const ac = new AbortController();
      const other = databaseConnectionGate({ db: store.db, service: 'cymru', connections: 2, leaseMs: 60_000, logger: silentLogger, signal: ac.signal });
      const give = await other.acquire();
      await give();
      // Hold both again for good, then ask and interrupt.
      await other.acquire();
      await other.acquire();
      const interrupted = other.acquire();
      ac.abort();
      await expect(interrupted).rejects.toSatisfy((e: unknown) => e instanceof UserError && e.exitCode === 130);
    });
  });
}
