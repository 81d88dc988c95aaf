/**
 * A provider's limits held for every worker on one database together (docs/SCALING.md, "N refresh
 * workers"): several `cowrie-enrich refresh` processes, or `cowrie-loader follow --enrich`, asking
 * one service at once. The daily quotas are already shared (quota.ts, api_quota); this module
 * shares the request rate and the number of connections.
 *
 * Rate: each worker keeps its own sliding-window limiter (rate-limit.ts: slots counted from the
 * answer, so jitter between sending and arriving cannot push the server's count over), and the
 * limiter's limit becomes this worker's share of the declared rate. A heartbeat renews the
 * worker's row in rate_shares and reads the live rows; the shares of one reading sum to exactly
 * the declared rate. No request waits for the database: a worker alone runs at the full rate.
 *
 * Why the sum holds across workers reading at different moments: a worker's share only shrinks as
 * more rows are live (share = ceil((P - rank) / n), rank in the global (joined, holder) order), so
 * shares taken from readings that each include every worker sending sum to at most P. Hence:
 * - a joiner sends only once every other working worker has read it (each reading is trusted for
 *   two heartbeats, the limiter grants nothing after that) and has drained its window;
 * - a leaver's row stays live until its last requests have left its window, reserving their
 *   number (`draining`); the others split the rest at once (removing a leaver that reserves its
 *   whole share leaves every other share as it was, so this never raises a share too early);
 * - a share read slowly may lower the limit but never raise it.
 *
 * Connections: one row per slot in connection_slots, taken with a lease on the database clock, so a
 * killed worker's slot is free again once the lease (the connection's deadline plus a margin) ends.
 */
import { performance } from 'node:perf_hooks';
import { errorMessage, UserError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  ensureConnectionSlots, freeConnectionSlots, leaveRateShare, liveRateShares, pruneRateShares, publishRateShare, releaseConnectionSlot, renewRateShare,
  retireRateShare, tryTakeConnectionSlot,
} from '../store/coordination-repo.js';
import { escapeControl } from '../text.js';
import type { DialectAdapter } from '../store/store.js';
import { goneFromThisMachine, workerName } from './claims.js';
import { sleep, type SlidingWindowLimiter } from './rate-limit.js';
import type { ConnectionGate, SourceLimits } from './sources/source.js';

/** How often a worker renews its row and re-reads the others'. */
export const SHARE_HEARTBEAT_MS = 250;
/** Rows of workers gone for this long are deleted when another registers. */
const PRUNE_AFTER_MS = 3_600_000;
/** A connection slot's lease beyond the connection's own deadline (event-loop stalls, the database round trip). */
export const CONNECTION_LEASE_MARGIN_MS = 5000;
/** Mean wait between two looks for a free connection slot (jittered ±50%). */
const SLOT_POLL_MS = 100;

/** The timings of a shared rate, all derived from the heartbeat and the rate window. */
export interface ShareTimings {
  heartbeatMs: number;
  /** A row not renewed for this long has expired: a missed heartbeat or two plus the window its holder may still be draining. */
  ttlMs: number;
  /** How long a reading is trusted: every worker re-reads (or stops granting) within this. */
  trustMs: number;
  /** A joiner's wait before its first request when others work: they read it (trustMs), then drain their window. */
  joinWaitMs: number;
}

export function shareTimings(windowMs: number, heartbeatMs = SHARE_HEARTBEAT_MS): ShareTimings {
  return {
    heartbeatMs,
    ttlMs: 3 * heartbeatMs + windowMs,
    trustMs: 2 * heartbeatMs,
    joinWaitMs: 2 * heartbeatMs + windowMs,
  };
}

/**
 * `holder`'s share of `perWindow`, less what departed workers still have in the window
 * (`reserved`), among the `ranked` working holders (in their global order): floor(P/n), plus one
 * for each of the first P mod n; the shares of one ranking sum to exactly P. 0 when `holder` is
 * not among them.
 */
export function shareOf(perWindow: number, ranked: readonly string[], holder: string, reserved = 0): number {
  const rank = ranked.indexOf(holder);
  if (rank < 0) return 0;
  const p = Math.max(0, perWindow - reserved);
  const n = ranked.length;
  return Math.floor(p / n) + (rank < p % n ? 1 : 0);
}

/** This process, as rate_shares and connection_slots name it (readable: who holds a slot). */
const PROCESS_ID = workerName();
let holderSeq = 0;
/**
 * Runs that ended in this process, per service: the next run takes the holder name back, so a run
 * following another while its row is live (follow --enrich, every few seconds) continues the same
 * live row instead of joining again and waiting; and takes over its limiter's window, whose
 * requests the server still counts against that row's share.
 */
const idleHolders = new Map<string, Array<{ holder: string; limiter: SlidingWindowLimiter }>>();

function takeHolder(service: string, limiter: SlidingWindowLimiter): string {
  const idle = idleHolders.get(service)?.pop();
  if (!idle) return `${PROCESS_ID}:${++holderSeq}`;
  limiter.adopt(idle.limiter);
  return idle.holder;
}

function returnHolder(service: string, holder: string, limiter: SlidingWindowLimiter): void {
  const list = idleHolders.get(service) ?? [];
  list.push({ holder, limiter });
  idleHolders.set(service, list);
}

export interface SharedRateOptions {
  db: DialectAdapter;
  /** The source's name: one rate per service for every worker on the database. */
  service: string;
  /** The declared requests per window, for all workers together. */
  perWindow: number;
  /** This worker's limiter (its window is the rate's): its limit becomes this worker's share. */
  limiter: SlidingWindowLimiter;
  /** As in log lines: `GreyNoise`. */
  title: string;
  logger: Logger;
  heartbeatMs?: number;
}

export interface SharedRate {
  /** This worker's name in rate_shares. */
  readonly holder: string;
  /** This worker's share now (0 while it joins or cannot read the database). */
  readonly share: number;
  /** Stop the heartbeat and leave (the row stays, reserving the requests still in the window, until they leave it). */
  close(): Promise<void>;
}

/**
 * Share `perWindow` with every other worker of `service` on the database: the limiter grants
 * nothing until the first reading (one round trip), then this worker's share.
 */
export function startSharedRate(o: SharedRateOptions): SharedRate {
  const t = shareTimings(o.limiter.windowMs, o.heartbeatMs);
  const { db, service, limiter } = o;
  const holder = takeHolder(service, limiter);
  limiter.setLimit(0);
  let applied = 0;
  /** performance.now() before which this worker, joining while others were live, sends nothing. */
  let sendableAt = 0;
  let first = true;
  let failing = false;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let beating: Promise<void> = Promise.resolve();
  /** Limits replaced less than a window ago: requests granted under them may still count at the server. */
  let replaced: Array<{ limit: number; at: number }> = [];
  /** The most requests this worker may have in the window: what others reserve for it should it die. */
  const mostInWindow = (now: number): number => {
    replaced = replaced.filter((r) => r.at + limiter.windowMs > now);
    return Math.max(applied, ...replaced.map((r) => r.limit));
  };

  const beat = async (): Promise<void> => {
    const issued = performance.now();
    try {
      if (first) await pruneRateShares(db, service, PRUNE_AFTER_MS);
      const { fresh } = await renewRateShare(db, service, holder, t.ttlMs, mostInWindow(issued));
      // The row is visible to others from before this moment: the join wait counts from here.
      const renewed = performance.now();
      const live = await liveRateShares(db, service);
      // Workers of this machine whose process died send nothing more: retired at once, their
      // published share reserved until their row expires (other machines' expire by their TTL).
      for (const r of live) {
        if (r.draining !== null || !goneFromThisMachine(r.holder)) continue;
        await retireRateShare(db, service, r.holder, o.perWindow);
        r.draining = r.share ?? o.perWindow;
        o.logger.info(`${o.title}: a worker of this machine that is no longer running (${escapeControl(r.holder)}) held a share of the rate; its last requests stay reserved until they leave the window`);
      }
      const now = performance.now();
      if (closed) return;
      first = false;
      const working = live.filter((r) => r.draining === null);
      // Departed workers need not see a joiner: what they still have in the window is reserved.
      if (fresh && working.some((r) => r.holder !== holder)) sendableAt = renewed + t.joinWaitMs;
      const reserved = live.reduce((sum, r) => sum + (r.draining ?? 0), 0);
      const share = now < sendableAt ? 0 : shareOf(o.perWindow, working.map((r) => r.holder), holder, reserved);
      // A reading that took longer than a heartbeat may be stale: it may lower the share, never raise it.
      const next = share <= applied || now - issued <= t.heartbeatMs ? share : applied;
      // Published before the limit rises: what others reserve for this worker, should it die, covers it.
      if (next > applied) await publishRateShare(db, service, holder, next);
      if (next !== applied) {
        if (live.length > 1) o.logger.debug(`${o.title}: rate share ${next} of ${o.perWindow} per ${limiter.windowMs} ms (${working.length} workers)`);
        replaced.push({ limit: applied, at: performance.now() });
      }
      applied = next;
      limiter.setLimit(next, issued + t.trustMs);
      if (failing) o.logger.info(`${o.title}: the database answers again; sharing the rate with the other workers`);
      failing = false;
    } catch (err) {
      // Nothing more is granted once the last reading is no longer trusted (the limiter's deadline).
      if (!failing && !closed) o.logger.warn(`${o.title}: cannot read the shared rate from the database (${errorMessage(err)}); no request goes out until it answers`);
      failing = true;
    }
  };
  const loop = (): void => {
    const started = performance.now();
    beating = beat().finally(() => {
      if (closed) return;
      // Kept referenced: a worker waiting for its share must not let the process exit.
      timer = setTimeout(loop, Math.max(0, t.heartbeatMs - (performance.now() - started)));
    });
  };
  loop();
  return {
    holder,
    get share() {
      return applied;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      await beating;
      // Nothing more goes out under this share.
      limiter.setLimit(0);
      applied = 0;
      // The requests still in the window stay reserved until they leave it; the rest is the others' at once.
      const { slots, drainMs } = limiter.inWindow();
      try {
        await leaveRateShare(db, service, holder, slots, drainMs);
      } catch (err) {
        o.logger.debug(`${o.title}: could not leave the shared rate (${errorMessage(err)}); the row expires by itself`);
      }
      returnHolder(service, holder, limiter);
    },
  };
}

export interface ConnectionGateOptions {
  db: DialectAdapter;
  service: string;
  /** Connections open at once across every worker. */
  connections: number;
  /** How long a taken slot stays taken without being given back: the connection's deadline plus a margin. */
  leaseMs: number;
  /** Aborting stops the wait for a slot (the run is interrupted). */
  signal?: AbortSignal;
  logger: Logger;
  random?: () => number;
}

/** A source's connections shared by every worker on the database, as its declared concurrency allows. */
export function connectionGateFor(db: DialectAdapter, service: string, limits: SourceLimits, o: { signal?: AbortSignal; logger: Logger }): ConnectionGate {
  return databaseConnectionGate({ db, service, connections: limits.concurrency, leaseMs: limits.timeoutMs + CONNECTION_LEASE_MARGIN_MS, ...o });
}

/** At most `connections` held at once across every worker: slots 0 … n-1 in connection_slots, each a lease on the database clock. */
export function databaseConnectionGate(o: ConnectionGateOptions): ConnectionGate {
  const { db, service } = o;
  const n = Math.max(1, Math.floor(o.connections));
  const random = o.random ?? Math.random;
  let ready: Promise<void> | null = null;
  let seq = 0;
  const interrupted = () => new UserError('interrupted: committed work is kept; run again to continue', 130);
  return {
    async acquire() {
      ready ??= ensureConnectionSlots(db, service, n).catch((err: unknown) => {
        ready = null;
        throw err;
      });
      await ready;
      // One name per connection, so giving one back can never free another's slot.
      const holder = `${PROCESS_ID}:c${++seq}`;
      for (;;) {
        if (o.signal?.aborted) throw interrupted();
        // A read first: looking costs no write lock (SQLite) while every slot is busy.
        for (const slot of await freeConnectionSlots(db, service, n)) {
          if (await tryTakeConnectionSlot(db, service, slot, holder, o.leaseMs)) {
            let given = false;
            return async () => {
              if (given) return;
              given = true;
              await releaseConnectionSlot(db, service, slot, holder).catch((err: unknown) => {
                o.logger.debug(`${service}: could not give back connection slot ${slot} (${errorMessage(err)}); its lease frees it`);
              });
            };
          }
        }
        await sleep(SLOT_POLL_MS * (0.5 + random()), o.signal).catch(() => {
          throw interrupted();
        });
      }
    },
  };
}
