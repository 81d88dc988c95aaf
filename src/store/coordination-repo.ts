/**
 * What several workers on one database share (docs/SCALING.md): each worker's row in a service's
 * rate (rate_shares) and the service's connection slots (connection_slots). Every time is
 * milliseconds since the epoch on the database's clock (DialectAdapter.nowMsSql), never a
 * worker's own, so workers on machines with skewed clocks still agree on what has expired.
 * Storage only: what a share or a slot is for is src/enrich/shared-limits.ts's business.
 */
import type { DialectAdapter } from './store.js';

export interface RateShareHolder {
  holder: string;
  /** When the holder joined (database clock, ms). */
  joinedMs: number;
  /** The most requests a working holder may have in the window (null: not published). */
  share: number | null;
  /** A holder that left: its requests still in the server's window (until its row expires); null while it works. */
  draining: number | null;
}

/**
 * Register `holder` for `service`, or renew its row, until `ttlMs` from now, publishing `share`
 * (the most requests it may have in the window). `fresh`: the holder (re)joined now — it had no
 * row, or its row had expired — as opposed to renewing a live row.
 */
export async function renewRateShare(db: DialectAdapter, service: string, holder: string, ttlMs: number, share: number): Promise<{ fresh: boolean }> {
  const now = db.nowMsSql();
  // Renewing a live row: the check and the renewal in one statement, so the row cannot expire in between.
  const renewed = await db.run(
    `UPDATE rate_shares SET expires_ms = ${now} + ?, share = ?, draining = NULL WHERE service = ? AND holder = ? AND expires_ms >= ${now}`,
    [ttlMs, share, service, holder],
  );
  if (renewed === 1) return { fresh: false };
  // No row, or an expired one (only this holder writes its row): a new join, ranked from now.
  await db.run(
    `INSERT INTO rate_shares (service, holder, joined_ms, expires_ms, share, draining) VALUES (?, ?, ${now}, ${now} + ?, ?, NULL)
     ON CONFLICT (service, holder) DO UPDATE SET joined_ms = excluded.joined_ms, expires_ms = excluded.expires_ms, share = excluded.share, draining = NULL`,
    [service, holder, ttlMs, share],
  );
  return { fresh: true };
}

/** The holders of `service` whose rows have not expired, ranked by (joined, holder): the same order for every worker. */
export async function liveRateShares(db: DialectAdapter, service: string): Promise<RateShareHolder[]> {
  const rows = await db.query<{ holder: string; joined_ms: number | string; share: number | string | null; draining: number | string | null }>(
    `SELECT holder, joined_ms, share, draining FROM rate_shares WHERE service = ? AND expires_ms >= ${db.nowMsSql()}`,
    [service],
  );
  // Ranked here, not by ORDER BY: text order must not depend on the database's collation.
  const num = (v: number | string | null) => (v === null ? null : Number(v));
  return rows.map((r) => ({ holder: r.holder, joinedMs: Number(r.joined_ms), share: num(r.share), draining: num(r.draining) }))
    .sort((a, b) => a.joinedMs - b.joinedMs || (a.holder < b.holder ? -1 : a.holder > b.holder ? 1 : 0));
}

/**
 * `holder` leaves `service`: its row stays live `drainMs` more, reserving `draining` requests (its
 * last ones, still counted in the server's window), then expires.
 */
export async function leaveRateShare(db: DialectAdapter, service: string, holder: string, draining: number, drainMs: number): Promise<void> {
  await db.run(`UPDATE rate_shares SET expires_ms = ${db.nowMsSql()} + ?, draining = ? WHERE service = ? AND holder = ?`, [drainMs, draining, service, holder]);
}

/** Publish `holder`'s share (before raising its limit to it). */
export async function publishRateShare(db: DialectAdapter, service: string, holder: string, share: number): Promise<void> {
  await db.run('UPDATE rate_shares SET share = ? WHERE service = ? AND holder = ?', [share, service, holder]);
}

/**
 * A working holder that is gone (its process died): it sends nothing more, and what it may still
 * have in the window (its published share, else `fallback`) stays reserved until its row expires.
 */
export async function retireRateShare(db: DialectAdapter, service: string, holder: string, fallback: number): Promise<void> {
  await db.run('UPDATE rate_shares SET draining = COALESCE(share, ?) WHERE service = ? AND holder = ? AND draining IS NULL', [fallback, service, holder]);
}

/** Delete rows of `service` expired more than `afterMs` ago (workers that were killed). */
export async function pruneRateShares(db: DialectAdapter, service: string, afterMs: number): Promise<void> {
  await db.run(`DELETE FROM rate_shares WHERE service = ? AND expires_ms < ${db.nowMsSql()} - ?`, [service, afterMs]);
}

/** Make sure slots 0 … n-1 of `service` exist (free unless taken). */
export async function ensureConnectionSlots(db: DialectAdapter, service: string, n: number): Promise<void> {
  for (let slot = 0; slot < n; slot++) {
    await db.run('INSERT INTO connection_slots (service, slot, holder, expires_ms) VALUES (?, ?, NULL, 0) ON CONFLICT (service, slot) DO NOTHING', [service, slot]);
  }
}

/** Slots below `n` of `service` that are free or whose lease ran out, in slot order. */
export async function freeConnectionSlots(db: DialectAdapter, service: string, n: number): Promise<number[]> {
  const rows = await db.query<{ slot: number | string }>(
    `SELECT slot FROM connection_slots WHERE service = ? AND slot < ? AND (holder IS NULL OR expires_ms < ${db.nowMsSql()}) ORDER BY slot`,
    [service, n],
  );
  return rows.map((r) => Number(r.slot));
}

/** Take `slot` of `service` for `holder` until `leaseMs` from now, if it is free or its lease ran out; true when taken. */
export async function tryTakeConnectionSlot(db: DialectAdapter, service: string, slot: number, holder: string, leaseMs: number): Promise<boolean> {
  const now = db.nowMsSql();
  const n = await db.run(
    `UPDATE connection_slots SET holder = ?, expires_ms = ${now} + ?
     WHERE service = ? AND slot = ? AND (holder IS NULL OR expires_ms < ${now})`,
    [holder, leaseMs, service, slot],
  );
  return n === 1;
}

/** Give `slot` back, unless its lease ran out and another holder has it since. */
export async function releaseConnectionSlot(db: DialectAdapter, service: string, slot: number, holder: string): Promise<void> {
  await db.run('UPDATE connection_slots SET holder = NULL, expires_ms = 0 WHERE service = ? AND slot = ? AND holder = ?', [service, slot, holder]);
}
