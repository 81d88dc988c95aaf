/**
 * Work claims with leases (docs/SCALING.md, "N refresh workers"): several refresh processes,
 * `cowrie-loader follow --enrich` and a nightly `cowrie-orchestrate` on one database each take a
 * disjoint set of IPs (and file hashes), so no answer is paid for twice. A claim lives for a lease
 * renewed while the run works and is dropped when the run ends (a committed IP is no longer due,
 * so its claim keeps nobody from anything meanwhile; dropping claims per commit tripled the cost
 * of a SQLite commit, measured). A killed worker's claims expire within one lease and are taken
 * over — at once by a worker of the same machine, which can tell that the process is gone.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { claimItems, liveHolders, releaseHolder, renewClaims, type ClaimKind } from '../store/claim-repo.js';
import { escapeControl } from '../text.js';
import type { DialectAdapter } from '../store/store.js';

export const DEFAULT_LEASE_SECONDS = 60;
/** Rounds of select-then-claim when other workers win some of the selection in between. */
const MAX_ROUNDS = 5;

export interface WorkClaims {
  /** host:pid:random — who holds the claims (shown to other workers). */
  readonly holder: string;
  /**
   * Select up to `limit` items (null: all) no live claim holds and claim them; items another
   * worker claimed in between are replaced by the next ones, in up to five rounds.
   */
  take<T>(kind: ClaimKind, limit: number | null, select: (limit: number | null) => Promise<T[]>, key: (item: T) => string): Promise<T[]>;
  /** Stop renewing and drop every claim left (the run is over or interrupted). */
  close(): Promise<void>;
}

const host = () => os.hostname().slice(0, 64);

export function workerName(): string {
  return `${host()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** Whether a process of this machine is running (a pid we may not signal is running too). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A worker name (`host:pid:…`, workerName) of this machine whose process is no longer running; false for other machines' and this process's. */
export function goneFromThisMachine(holder: string): boolean {
  if (!holder.startsWith(`${host()}:`)) return false;
  const pid = Number(holder.slice(host().length + 1).split(':')[0]);
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !running(pid);
}

/**
 * Claims of workers of this machine that are no longer running (killed, crashed) are dropped at
 * once instead of after their lease: a restarted worker carries on where the dead one stopped.
 * Other machines' workers are judged by their leases alone.
 */
async function reapDeadLocalHolders(db: DialectAdapter, logger: Logger): Promise<void> {
  for (const holder of await liveHolders(db, `${host()}:`)) {
    if (!goneFromThisMachine(holder)) continue;
    const n = await releaseHolder(db, holder);
    if (n) logger.info(`Took over ${n} claimed items of a worker that is no longer running (${escapeControl(holder)})`);
  }
}

export function startWorkClaims(db: DialectAdapter, o: { leaseSeconds: number; logger: Logger; holder?: string }): WorkClaims {
  const holder = o.holder ?? workerName();
  const leaseMs = o.leaseSeconds * 1000;
  let timer: NodeJS.Timeout | null = null;
  let renewing: Promise<unknown> = Promise.resolve();
  let failing = false;
  let reaped = false;
  // Renewed three times a lease: one late or failed renewal does not yet let another worker in.
  const renew = () => {
    renewing = renewClaims(db, holder, leaseMs).then(() => {
      if (failing) o.logger.info('Work claims renewed again');
      failing = false;
    }, (err: unknown) => {
      if (!failing) o.logger.warn(`Could not renew this worker's claims (${errorMessage(err)}); other workers may take its IPs once the ${o.leaseSeconds} s lease runs out`);
      failing = true;
    });
  };
  const startRenewing = () => {
    if (timer) return;
    timer = setInterval(renew, Math.max(1000, Math.floor(leaseMs / 3)));
    timer.unref();
  };
  return {
    holder,
    async take(kind, limit, select, key) {
      startRenewing();
      if (!reaped) {
        reaped = true;
        await reapDeadLocalHolders(db, o.logger);
      }
      const got: Parameters<typeof key>[0][] = [];
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const want = limit === null ? null : limit - got.length;
        if (want === 0) break;
        const candidates = await select(want);
        if (!candidates.length) break;
        const won = await claimItems(db, kind, holder, leaseMs, candidates.map(key));
        for (const c of candidates) if (won.has(key(c))) got.push(c);
        // Nobody took any of them in between: the selection is complete.
        if (won.size === candidates.length || limit === null) break;
      }
      return got;
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = null;
      await renewing;
      await releaseHolder(db, holder);
    },
  };
}
