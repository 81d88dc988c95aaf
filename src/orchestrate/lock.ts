/**
 * Never two orchestrated runs on one database at once: the store's run lock (PostgreSQL session
 * advisory lock, SQLite kernel lock), which a crashed or killed run cannot leave behind.
 */
import os from 'node:os';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HeldLock, LockHolder, Store } from '../store/store.js';
import { escapeControl } from '../text.js';

/** sysexits.h EX_TEMPFAIL: cron and systemd read it as "try again later". */
export const EXIT_LOCKED = 75;
const LOCK_NAME = 'orchestrate';
const WAIT_POLL_MS = 1000;

export function describeHolder(h: LockHolder | null): string {
  return h ? `host ${escapeControl(h.host)}, pid ${h.pid}, started at ${h.startedAt}` : 'holder not visible (another database role, or it is just starting)';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Take the run lock; busy: exit 75 naming the holder, or with `wait` poll until it is free. */
export async function acquireRunLock(store: Store, o: { wait: boolean; logger: Logger; signal?: AbortSignal; now?: () => Date }): Promise<HeldLock> {
  const holder: LockHolder = { host: os.hostname(), pid: process.pid, startedAt: `${(o.now?.() ?? new Date()).toISOString().slice(0, 19)}Z` };
  let told = false;
  for (;;) {
    if (o.signal?.aborted) throw new UserError('interrupted while waiting for the run lock: nothing was loaded', 130);
    const attempt = await store.db.tryRunLock(LOCK_NAME, holder);
    if ('held' in attempt) return attempt.held;
    const who = describeHolder(attempt.busy);
    if (!o.wait) {
      throw new UserError(`another cowrie-orchestrate is running on ${store.target.display} (${who}); not starting a second one (exit ${EXIT_LOCKED}: try later, or use --wait)`, EXIT_LOCKED);
    }
    if (!told) o.logger.warn(`another cowrie-orchestrate is running on ${store.target.display} (${who}); waiting for it to finish (--wait)`);
    told = true;
    await sleep(WAIT_POLL_MS, o.signal);
  }
}
