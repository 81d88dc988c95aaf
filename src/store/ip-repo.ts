import type { DialectAdapter, SqlRunner } from './dialects/types.js';
import { readBool, readJson } from './schema.js';

export interface IpCandidate {
  ip: string;
  firstSeen: string | null;
  lastSeen: string | null;
  sessionCount: number;
  currentAsn: number | null;
  /** Has an enrichment document to merge into (read it with readEnrichment). */
  enriched: boolean;
}

const inList = (n: number) => Array.from({ length: n }, () => '?').join(',');

const CANDIDATE_COLUMNS = 'ip_address, first_seen, last_seen, session_count, current_asn, enrichment IS NOT NULL AS has_enrichment';
type CandidateRow = { ip_address: string; first_seen: string | null; last_seen: string | null; session_count: number | string; current_asn: number | null; has_enrichment: unknown };
const candidate = (r: CandidateRow): IpCandidate => ({
  ip: r.ip_address, firstSeen: r.first_seen, lastSeen: r.last_seen, sessionCount: Number(r.session_count),
  currentAsn: r.current_asn === null ? null : Number(r.current_asn), enriched: readBool(r.has_enrichment) === true,
});

export interface IpSelection {
  cutoff: string;
  limit: number | null;
  ips?: string[];
  /**
   * Sources this run cannot ask (no key, not configured, --offline): an IP owed only by them is
   * not due, or every such run would redo it for nothing. `enrichment_pending` lists sources
   * sorted and comma-joined, so "owed only by these" is one of their sorted subsets.
   */
  unavailable?: string[];
  /** IPs to leave out (seenOnlyOn: sensors with enable_asn_inventory = false). */
  leaveOut?: SqlCondition;
  /** Only rows also matching this (claim-repo's `unclaimed`: no other worker holds them). */
  only?: SqlCondition;
}

/**
 * IPs due for enrichment: never enriched, enriched before `cutoff` (computed in code, not
 * SQL date arithmetic — the original's SQLite bug), or still owed a source from an earlier run.
 */
export function ipsDue(opts: Pick<IpSelection, 'cutoff' | 'unavailable' | 'leaveOut'>): SqlCondition {
  const skip = pendingSubsets(opts.unavailable ?? []);
  return {
    sql: `(ip_inventory.enrichment_updated_at IS NULL OR ip_inventory.enrichment_updated_at < ?
        OR (ip_inventory.enrichment_pending IS NOT NULL${skip.length ? ` AND ip_inventory.enrichment_pending NOT IN (${inList(skip.length)})` : ''}))${opts.leaveOut ? ` AND NOT (${opts.leaveOut.sql})` : ''}`,
    params: [opts.cutoff, ...skip, ...(opts.leaveOut?.params ?? [])],
  };
}

/** IPs due (ipsDue), most recently seen first, so a limit takes the most relevant; or exactly `ips`, whatever their age. */
export async function selectIpsToEnrich(db: SqlRunner, opts: IpSelection): Promise<IpCandidate[]> {
  const only = opts.only ? ` AND ${opts.only.sql}` : '';
  if (opts.ips?.length) {
    const out: IpCandidate[] = [];
    const wanted = [...new Set(opts.ips)];
    for (let k = 0; k < wanted.length; k += 500) {
      const chunk = wanted.slice(k, k + 500);
      out.push(...(await db.query<CandidateRow>(
        `SELECT ${CANDIDATE_COLUMNS} FROM ip_inventory WHERE ip_address IN (${inList(chunk.length)})${only}`, [...chunk, ...(opts.only?.params ?? [])],
      )).map(candidate));
    }
    return sortCandidates(out);
  }
  const due = ipsDue(opts);
  const rows = await db.query<CandidateRow>(
    `SELECT ${CANDIDATE_COLUMNS} FROM ip_inventory WHERE ${due.sql}${only}
     ORDER BY last_seen DESC, ip_address${opts.limit ? ' LIMIT ?' : ''}`,
    [...due.params, ...(opts.only?.params ?? []), ...(opts.limit ? [opts.limit] : [])],
  );
  return rows.map(candidate);
}

/** The selection's order: most recently seen first, then by address. */
export function sortCandidates(c: IpCandidate[]): IpCandidate[] {
  return c.sort((a, b) => (b.lastSeen ?? '').localeCompare(a.lastSeen ?? '') || a.ip.localeCompare(b.ip));
}

/**
 * IPs owed nothing but some of `sources` (their `enrichment_pending` is one of its subsets) and not
 * owed only by `unavailable` ones, enriched at or after `freshSince` (older ones are due for every
 * source: selectIpsToEnrich takes them). Live mode's HTTP loop asks these; the rest of each row is kept.
 */
export function ipsPendingOnly(opts: { sources: string[]; unavailable?: string[]; freshSince: string; leaveOut?: SqlCondition }): SqlCondition {
  const owed = pendingSubsets(opts.sources);
  const skip = pendingSubsets(opts.unavailable ?? []);
  return {
    sql: `ip_inventory.enrichment_pending IN (${inList(owed.length)})${skip.length ? ` AND ip_inventory.enrichment_pending NOT IN (${inList(skip.length)})` : ''}
        AND ip_inventory.enrichment_updated_at >= ?${opts.leaveOut ? ` AND NOT (${opts.leaveOut.sql})` : ''}`,
    params: [...owed, ...skip, opts.freshSince, ...(opts.leaveOut?.params ?? [])],
  };
}

/** An IP with the sources it is still owed. */
export interface PendingCandidate extends IpCandidate {
  pending: string[];
}

/** ipsPendingOnly's IPs, longest waiting first (oldest enrichment_updated_at), so new IPs never starve old ones. */
export async function selectIpsPendingOnly(db: SqlRunner, opts: Parameters<typeof ipsPendingOnly>[0] & {
  limit: number | null;
  /** Only rows also matching this (claim-repo's `unclaimed`: no other worker holds them). */
  only?: SqlCondition;
}): Promise<PendingCandidate[]> {
  if (!opts.sources.length) return [];
  const where = ipsPendingOnly(opts);
  const rows = await db.query<CandidateRow & { enrichment_pending: string }>(
    `SELECT ${CANDIDATE_COLUMNS}, enrichment_pending FROM ip_inventory WHERE ${where.sql}${opts.only ? ` AND ${opts.only.sql}` : ''}
     ORDER BY enrichment_updated_at, ip_address${opts.limit ? ' LIMIT ?' : ''}`,
    [...where.params, ...(opts.only?.params ?? []), ...(opts.limit ? [opts.limit] : [])],
  );
  return rows.map((r) => ({ ...candidate(r), pending: r.enrichment_pending.split(',') }));
}

/** The form `enrichment_pending` is written in: source names sorted, comma-joined; null for none. */
export function pendingColumn(sources: Iterable<string>): string | null {
  const list = [...new Set(sources)].sort();
  return list.length ? list.join(',') : null;
}

/** Every non-empty subset of `sources`, each in pendingColumn() form. */
function pendingSubsets(sources: string[]): string[] {
  const list = [...new Set(sources)].sort();
  const out: string[] = [];
  for (let mask = 1; mask < 1 << list.length; mask++) out.push(pendingColumn(list.filter((_, i) => mask & (1 << i)))!);
  return out;
}

/** A WHERE condition on ip_inventory with its parameters. */
export interface SqlCondition {
  sql: string;
  params: unknown[];
}

/**
 * IPs seen only on these sensors (every name in `sensors` is one of them): what a sensor with
 * `enable_asn_inventory = false` keeps out of an orchestrated refresh. IPs without sensors stay in.
 */
export function seenOnlyOn(db: DialectAdapter, sensors: string[]): SqlCondition {
  const names = db.jsonArrayTexts('ip_inventory.sensors');
  return {
    sql: `EXISTS (SELECT 1 FROM ${names}) AND NOT EXISTS (SELECT 1 FROM ${names} WHERE value NOT IN (${inList(sensors.length)}))`,
    params: sensors,
  };
}

/** The current enrichment documents of these IPs (to merge this run's answers into). */
export async function readEnrichment(db: SqlRunner, ips: string[]): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  for (let k = 0; k < ips.length; k += 500) {
    const chunk = ips.slice(k, k + 500);
    const rows = await db.query<{ ip_address: string; enrichment: unknown }>(
      `SELECT ip_address, enrichment FROM ip_inventory WHERE ip_address IN (${inList(chunk.length)})`, chunk,
    );
    for (const r of rows) out.set(r.ip_address, readJson<Record<string, unknown>>(r.enrichment) ?? {});
  }
  return out;
}

export interface IpEnrichmentRow {
  ip: string;
  enrichment: Record<string, unknown>;
  currentAsn: number | null;
  geoCountry: string | null;
  isScanner: boolean | null;
  updatedAt: string;
  asnVerifiedAt: string | null;
  version: string;
  pending: string | null;
}

/** `keepAsnVerified`: the run asked no source of the ASN, so asn_last_verified stays as stored. */
export async function writeIpEnrichment(db: DialectAdapter, tx: SqlRunner, rows: IpEnrichmentRow[], o: { keepAsnVerified?: boolean } = {}): Promise<void> {
  // One row order for every writer, so concurrent commits lock rows in the same order.
  rows = [...rows].sort((p, q) => (p.ip < q.ip ? -1 : p.ip > q.ip ? 1 : 0));
  const verified = !o.keepAsnVerified;
  await db.updateMany(tx, 'ip_inventory', [
    ['ip_address', 'text'], ['enrichment', 'jsonb'], ['current_asn', 'bigint'], ['geo_country', 'text'], ['is_scanner', 'boolean'],
    ['enrichment_updated_at', 'timestamptz'], ...(verified ? [['asn_last_verified', 'timestamptz'] as [string, string]] : []),
    ['enrichment_version', 'text'], ['enrichment_pending', 'text'],
  ], rows.map((r) => [r.ip, JSON.stringify(r.enrichment), r.currentAsn, r.geoCountry, r.isScanner, r.updatedAt, ...(verified ? [r.asnVerifiedAt] : []), r.version, r.pending]));
}

export interface AsnRow {
  asn: number;
  name: string | null;
  country: string | null;
  registry: string | null;
  firstSeen: string | null;
  lastSeen: string | null;
  enrichment: Record<string, unknown> | null;
  updatedAt: string;
}

/** How an ASN's counts move when IPs join or leave it in one commit. */
export interface AsnDelta {
  ips: number;
  sessions: number;
}

/**
 * Upsert ASNs and move their counts by the IPs that joined or left them in the same transaction
 * as those IPs' rows, so a commit (or a crash after it) keeps counts and IPs in step. Cheap per
 * commit; recountAsns() makes them exact from ip_inventory at the end of a run.
 */
export async function upsertAsns(db: DialectAdapter, tx: SqlRunner, rows: AsnRow[], deltas: Map<number, AsnDelta> = new Map()): Promise<void> {
  const a = 'asn_inventory';
  const x = 'excluded';
  const zero: AsnDelta = { ips: 0, sessions: 0 };
  // One lock order for every writer: commits in flight together never deadlock on ASN rows.
  rows = [...rows].sort((p, q) => p.asn - q.asn);
  if (rows.length) {
    await db.insertMany(tx, {
      table: a,
      columns: [['asn_number', 'bigint'], ['organization_name', 'text'], ['organization_country', 'text'], ['rir_registry', 'text'],
        ['first_seen', 'timestamptz'], ['last_seen', 'timestamptz'], ['enrichment', 'jsonb'], ['updated_at', 'timestamptz'],
        ['unique_ip_count', 'integer'], ['total_session_count', 'integer']],
      conflict: `ON CONFLICT (asn_number) DO UPDATE SET
        organization_name = coalesce(${x}.organization_name, ${a}.organization_name),
        organization_country = coalesce(${x}.organization_country, ${a}.organization_country),
        rir_registry = coalesce(${x}.rir_registry, ${a}.rir_registry),
        first_seen = ${db.least(`${a}.first_seen`, `${x}.first_seen`)},
        last_seen = ${db.greatest(`${a}.last_seen`, `${x}.last_seen`)},
        enrichment = coalesce(${x}.enrichment, ${a}.enrichment),
        updated_at = ${x}.updated_at,
        unique_ip_count = ${a}.unique_ip_count + ${x}.unique_ip_count,
        total_session_count = ${a}.total_session_count + ${x}.total_session_count`,
    }, rows.map((r) => {
      const d = deltas.get(r.asn) ?? zero;
      return [r.asn, r.name, r.country, r.registry, r.firstSeen, r.lastSeen, r.enrichment ? JSON.stringify(r.enrichment) : null, r.updatedAt, Math.max(0, d.ips), Math.max(0, d.sessions)];
    }));
  }
  // ASNs that only lost IPs (the IP moved to another AS) are not in `rows`.
  const inRows = new Set(rows.map((r) => r.asn));
  const others = [...deltas].filter(([asn, d]) => !inRows.has(asn) && (d.ips || d.sessions)).sort((p, q) => p[0] - q[0]);
  for (const [asn, d] of others) {
    await tx.run(`UPDATE ${a} SET unique_ip_count = unique_ip_count + ?, total_session_count = total_session_count + ? WHERE asn_number = ?`, [d.ips, d.sessions, asn]);
  }
}

/** Set these ASNs' unique_ip_count / total_session_count from ip_inventory (never incremented blindly). */
export async function recountAsns(db: DialectAdapter, asns: number[]): Promise<void> {
  // Sorted: concurrent recounts touch ASN rows in one order (fewer deadlocks; the dialect retries the rest).
  asns = [...new Set(asns)].sort((p, q) => p - q);
  for (let k = 0; k < asns.length; k += 500) {
    const chunk = asns.slice(k, k + 500);
    await db.transaction(async (tx) => {
      const got = await tx.query<{ current_asn: number; n: number | string; s: number | string | null }>(
        `SELECT current_asn, count(*) AS n, sum(session_count) AS s FROM ip_inventory WHERE current_asn IN (${inList(chunk.length)}) GROUP BY current_asn`, chunk,
      );
      const counts = new Map(got.map((r) => [Number(r.current_asn), [Number(r.n), Number(r.s ?? 0)]]));
      await db.updateMany(tx, 'asn_inventory', [['asn_number', 'bigint'], ['unique_ip_count', 'integer'], ['total_session_count', 'integer']],
        chunk.map((asn) => [asn, ...(counts.get(asn) ?? [0, 0])]));
    });
  }
}

/** ASNs that already have their own registry details (so no AS lookup is needed). */
export async function asnsWithDetails(db: SqlRunner, asns: number[]): Promise<Set<number>> {
  const out = new Set<number>();
  for (let k = 0; k < asns.length; k += 500) {
    const chunk = asns.slice(k, k + 500);
    const rows = await db.query<{ asn_number: number }>(
      `SELECT asn_number FROM asn_inventory WHERE organization_country IS NOT NULL AND asn_number IN (${inList(chunk.length)})`, chunk,
    );
    for (const r of rows) out.add(Number(r.asn_number));
  }
  return out;
}
