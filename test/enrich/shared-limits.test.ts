/**
 * Limits shared by workers on one database (src/enrich/shared-limits.ts), on both dialects: the
 * shares of a rate sum to exactly the declared rate, in the global (joined, holder) order; a joiner
 * sends only once the others have lowered and drained; a leaver's requests still in its window stay
 * reserved, the rest goes to the others at once; a killed worker's row expires; connection slots bound connections and a
 * lost holder's slot frees at the end of its lease.
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { SlidingWindowLimiter } from '../../src/enrich/rate-limit.js';
import { databaseConnectionGate, shareOf, shareTimings, startSharedRate, type SharedRate } from '../../src/enrich/shared-limits.js';
import { UserError } from '../../src/errors.js';
import { MemoryLogger, silentLogger } from '../../src/log.js';
import { leaveRateShare, liveRateShares, renewRateShare } from '../../src/store/coordination-repo.js';
import { openStore, type Store } from '../../src/store/store.js';
import { dialectCases } from '../helpers/dialects.js';
import { maxInWindow, waitFor } from '../helpers/world.js';

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
    expect(shareTimings(1000, 250)).toEqual({ heartbeatMs: 250, ttlMs: 1750, trustMs: 500, joinWaitMs: 1500 });
  });
});

/**
 * A worker's traffic: takes every slot its limiter grants, as fast as it grants them, and records
 * the moment of each (ended at once, as an answer arriving: the time the server counts).
 */
function pump(limiter: SlidingWindowLimiter, times: number[]): { stop(): Promise<void> } {
  const ac = new AbortController();
  const loop = (async () => {
    while (!ac.signal.aborted) {
      let end: () => void;
      try {
        end = await limiter.begin(ac.signal);
      } catch {
        return;
      }
      times.push(performance.now());
      end();
    }
  })();
  return { stop: async () => { ac.abort(); await loop; } };
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

    const worker = (limiter: SlidingWindowLimiter, perWindow = 11) => {
      const s = startSharedRate({ db: store!.db, service: 'greynoise', perWindow, limiter, title: 'GreyNoise', logger: silentLogger, heartbeatMs: HEARTBEAT_MS });
      open.push(s);
      return s;
    };
    const limiter = (windowMs = WINDOW_MS) => new SlidingWindowLimiter({ limit: 11, windowMs });

    it('the repository: a fresh join, a renewal, the live ranking and a leave that reserves what is still in the window (database clock)', async () => {
      store = await openStore(await d.newUrl());
      const db = store.db;
      expect(await renewRateShare(db, 'gn', 'b', 60_000, 4)).toEqual({ fresh: true });
      expect(await renewRateShare(db, 'gn', 'b', 60_000, 4)).toEqual({ fresh: false });
      expect(await renewRateShare(db, 'gn', 'a', 60_000, 4)).toEqual({ fresh: true });
      // Same join time: ranked by holder; otherwise by join time.
      await db.run('UPDATE rate_shares SET joined_ms = 5 WHERE holder IN (?, ?)', ['a', 'b']);
      await db.run("INSERT INTO rate_shares (service, holder, joined_ms, expires_ms) VALUES ('gn', 'early', 1, 9000000000000), ('other', 'x', 1, 9000000000000)");
      expect((await liveRateShares(db, 'gn')).map((r) => r.holder)).toEqual(['early', 'a', 'b']);
      // Leaving keeps the row live, reserving its requests, until they leave the window.
      await leaveRateShare(db, 'gn', 'a', 3, 150);
      expect((await liveRateShares(db, 'gn')).find((r) => r.holder === 'a')).toMatchObject({ draining: 3 });
      await waitFor(async () => !(await liveRateShares(db, 'gn')).some((r) => r.holder === 'a'), 5000, 'the leaver\'s window to drain');
      // Back after its row expired: a fresh join, ranked last, working again.
      expect(await renewRateShare(db, 'gn', 'a', 60_000, 4)).toEqual({ fresh: true });
      const live = await liveRateShares(db, 'gn');
      expect(live.map((r) => r.holder)).toEqual(['early', 'b', 'a']);
      expect(live.every((r) => r.draining === null)).toBe(true);
    });

    it('a worker alone gets the whole rate; joiners wait for the others to lower and drain; a leaver\'s share goes to the others: never more than P in any window', async () => {
      store = await openStore(await d.newUrl());
      const [la, lb, lc] = [limiter(), limiter(), limiter()];
      const times: number[] = [];
      const a = worker(la);
      // Nothing before the first reading, then the whole rate (alone: no join wait).
      expect(la.limit).toBe(0);
      const pa = pump(la, times);
      await waitFor(() => a.share === 11, 5000, 'A alone at the full rate');
      const [b, c] = [worker(lb), worker(lc)];
      const [pb, pc] = [pump(lb, times), pump(lc, times)];
      await waitFor(() => a.share === 4 && b.share + c.share === 7 && b.share > 0 && c.share > 0, 10_000, 'three shares');
      // Exactly P, the extra slots to the earliest joiners.
      const ranked = (await liveRateShares(store.db, 'greynoise')).map((r) => r.holder);
      expect(ranked[0]).toBe(a.holder);
      expect([a, b, c].map((w) => w.share).sort()).toEqual([3, 4, 4]);
      await pa.stop();
      await a.close();
      const left = (await liveRateShares(store.db, 'greynoise')).find((r) => r.holder === a.holder);
      if (left) expect(left.draining).toBeGreaterThan(0);
      await waitFor(() => b.share + c.share === 11, 10_000, 'A\'s share back to B and C');
      expect([b.share, c.share].sort()).toEqual([5, 6]);
      await new Promise((r) => setTimeout(r, 2 * WINDOW_MS));
      await Promise.all([pb.stop(), pc.stop()]);
      expect(times.length).toBeGreaterThan(20); // traffic flowed all along
      expect(maxInWindow(times, WINDOW_MS)).toBeLessThanOrEqual(11);
    });

    it('a worker joining after another left starts at once with what the leaver did not use; a killed worker\'s row expires', async () => {
      store = await openStore(await d.newUrl());
      const db = store.db;
      // Another process left a moment ago with 3 requests still in its window (for 3 s).
      await db.run(`INSERT INTO rate_shares (service, holder, joined_ms, expires_ms, draining) VALUES ('greynoise', 'gone', 1, ${db.nowMsSql()} + 3000, 3)`);
      const b = worker(limiter());
      const seen = new Set<number>();
      await waitFor(() => {
        seen.add(b.share);
        return b.share === 11;
      }, 10_000, 'the leaver\'s requests to leave its window');
      // No join wait (nobody working to tell), and the leaver's 3 reserved meanwhile.
      expect(seen.has(8)).toBe(true);
      // A worker killed a moment ago: its row is live (working, for all the others know) until its TTL runs out.
      await db.run(`INSERT INTO rate_shares (service, holder, joined_ms, expires_ms) VALUES ('greynoise', 'killed', 1, ${db.nowMsSql()} + 1500)`);
      await waitFor(() => b.share === 5, 5000, 'B sharing with the killed worker');
      await waitFor(() => b.share === 11, 5000, 'the killed worker\'s row to expire');
    });

    it('a worker of this machine whose process died is retired at once: only its published share stays reserved, no join wait', async () => {
      store = await openStore(await d.newUrl());
      const db = store.db;
      const dead = spawnSync('true').pid;
      const holder = `${hostname().slice(0, 64)}:${dead}:abcdef:1`;
      await db.run(`INSERT INTO rate_shares (service, holder, joined_ms, expires_ms, share) VALUES ('greynoise', ?, 1, ${db.nowMsSql()} + 60000, 3)`, [holder]);
      const logger = new MemoryLogger();
      const b = startSharedRate({ db, service: 'greynoise', perWindow: 11, limiter: limiter(), title: 'GreyNoise', logger, heartbeatMs: HEARTBEAT_MS });
      open.push(b);
      await waitFor(() => b.share === 8, 5000, 'B at the rate less the dead worker\'s share');
      expect((await liveRateShares(db, 'greynoise')).find((r) => r.holder === holder)).toMatchObject({ draining: 3 });
      expect(logger.lines.some((l) => l.startsWith('[INFO] GreyNoise: a worker of this machine that is no longer running'))).toBe(true);
    });

    it('a run following another of the same process continues its row and its window', async () => {
      store = await openStore(await d.newUrl());
      const [la, lb] = [limiter(), limiter()];
      const times: number[] = [];
      const a = worker(la);
      const b = worker(lb);
      const [pa, pb] = [pump(la, times), pump(lb, times)];
      await waitFor(() => a.share + b.share === 11 && a.share > 0 && b.share > 0, 10_000, 'two shares');
      const holder = a.holder;
      await pa.stop();
      await a.close();
      const logger = new MemoryLogger();
      const la2 = limiter();
      const a2 = startSharedRate({ db: store.db, service: 'greynoise', perWindow: 11, limiter: la2, title: 'GreyNoise', logger, heartbeatMs: HEARTBEAT_MS });
      open.push(a2);
      expect(a2.holder).toBe(holder);
      const pa2 = pump(la2, times);
      await waitFor(() => a2.share > 0 && a2.share + b.share === 11, 10_000, 'the next run at its share');
      await new Promise((r) => setTimeout(r, 2 * WINDOW_MS));
      await Promise.all([pb.stop(), pa2.stop()]);
      expect(maxInWindow(times, WINDOW_MS)).toBeLessThanOrEqual(11);
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
