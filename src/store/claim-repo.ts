/**
 * work_claims (migration 5): which worker is enriching which item (an IP, a file hash) until when.
 * Every time is the database's clock (DialectAdapter.nowMsSql), so workers on several machines agree.
 */
import type { DialectAdapter, SqlRunner } from './dialects/types.js';
import type { SqlCondition } from './ip-repo.js';

export type ClaimKind = 'ip' | 'file';

/** Expired claims older than this are deleted when new ones are taken (a dead worker's leftovers). */
const EXPIRED_KEEP_MS = 24 * 3600 * 1000;

/** A condition for `column` not being held by a live claim of `kind` (any worker's, this one's included). */
export function unclaimed(db: DialectAdapter, kind: ClaimKind, column: string): SqlCondition {
  return {
    sql: `NOT EXISTS (SELECT 1 FROM work_claims wc WHERE wc.kind = ? AND wc.item = ${column} AND wc.expires_ms >= ${db.nowMsSql()})`,
    params: [kind],
  };
}

/**
 * Claim `items` for `holder` until now + `leaseMs`; returns the items won. An item held by a live
 * claim of another worker is not won; an expired claim is taken over. Items are written in one
 * order, so two workers claiming overlapping sets at once wait on each other instead of deadlocking.
 */
export async function claimItems(db: DialectAdapter, kind: ClaimKind, holder: string, leaseMs: number, items: readonly string[]): Promise<Set<string>> {
  const won = new Set<string>();
  if (!items.length) return won;
  const now = db.nowMsSql();
  const sorted = [...new Set(items)].sort();
  await db.transaction(async (tx) => {
    await tx.run(`DELETE FROM work_claims WHERE expires_ms < ${now} - ?`, [EXPIRED_KEEP_MS]);
    // 10,000 a statement: bounded parameters, and one round trip for a usual batch.
    for (let k = 0; k < sorted.length; k += 10_000) {
      const keys = db.keyRows(sorted.slice(k, k + 10_000));
      // `WHERE true`: SQLite's parser needs it between INSERT … SELECT and ON CONFLICT.
      const rows = await tx.query<{ item: string }>(
        `INSERT INTO work_claims (kind, item, holder, expires_ms)
         SELECT ?, item, ?, ${now} + ? FROM ${keys.sql} WHERE true ORDER BY item
         ON CONFLICT (kind, item) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms
           WHERE work_claims.expires_ms < ${now} OR work_claims.holder = excluded.holder
         RETURNING item`,
        [kind, holder, leaseMs, ...keys.params],
      );
      for (const r of rows) won.add(r.item);
    }
  });
  return won;
}

/** Extend every claim `holder` has (the worker is still working); returns how many it holds. */
export function renewClaims(db: SqlRunner & Pick<DialectAdapter, 'nowMsSql'>, holder: string, leaseMs: number): Promise<number> {
  return db.run(`UPDATE work_claims SET expires_ms = ${db.nowMsSql()} + ? WHERE holder = ?`, [leaseMs, holder]);
}

/** Every claim of `holder`, whatever its kind (the run is over); returns how many there were. */
export function releaseHolder(db: SqlRunner, holder: string): Promise<number> {
  return db.run('DELETE FROM work_claims WHERE holder = ?', [holder]);
}

/** Holders with live claims whose name starts with `prefix` (this machine's workers). */
export async function liveHolders(db: DialectAdapter, prefix: string): Promise<string[]> {
  const rows = await db.query<{ holder: string }>(
    `SELECT DISTINCT holder FROM work_claims WHERE expires_ms >= ${db.nowMsSql()} AND substr(holder, 1, ?) = ? ORDER BY holder`,
    [prefix.length, prefix],
  );
  return rows.map((r) => r.holder);
}

/** Live claims of other workers on items of `table` matching `due` (`column` holds the item), and who holds them. */
export async function claimedByOthers(
  db: DialectAdapter, kind: ClaimKind, holder: string, table: string, column: string, due: SqlCondition,
): Promise<{ items: number; holders: string[] }> {
  const rows = await db.query<{ holder: string; n: number | string }>(
    `SELECT wc.holder, count(*) AS n FROM work_claims wc
     WHERE wc.kind = ? AND wc.holder <> ? AND wc.expires_ms >= ${db.nowMsSql()}
       AND EXISTS (SELECT 1 FROM ${table} WHERE ${table}.${column} = wc.item AND (${due.sql}))
     GROUP BY wc.holder ORDER BY wc.holder`,
    [kind, holder, ...due.params],
  );
  return { items: rows.reduce((n, r) => n + Number(r.n), 0), holders: rows.map((r) => r.holder) };
}
