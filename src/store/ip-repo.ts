import type { DialectAdapter, SqlRunner } from './dialects/types.js';
import { readJson } from './schema.js';

export interface IpCandidate {
  ip: string;
  lastSeen: string | null;
}

const inList = (n: number) => Array.from({ length: n }, () => '?').join(',');

/**
 * IPs due for enrichment: never enriched, enriched before `cutoff` (computed in code, not
 * SQL date arithmetic — the original's SQLite bug), or still owed a source from an earlier run.
 * Most recently seen first, so a limit takes the most relevant.
 */
export async function selectIpsToEnrich(db: SqlRunner, opts: { cutoff: string; limit: number | null; ips?: string[] }): Promise<IpCandidate[]> {
  if (opts.ips?.length) {
    const out: IpCandidate[] = [];
    for (let k = 0; k < opts.ips.length; k += 500) {
      const chunk = opts.ips.slice(k, k + 500);
      out.push(...(await db.query<{ ip_address: string; last_seen: string | null }>(
        `SELECT ip_address, last_seen FROM ip_inventory WHERE ip_address IN (${inList(chunk.length)})`, chunk,
      )).map((r) => ({ ip: r.ip_address, lastSeen: r.last_seen })));
    }
    return out.sort((a, b) => (b.lastSeen ?? '').localeCompare(a.lastSeen ?? ''));
  }
  const rows = await db.query<{ ip_address: string; last_seen: string | null }>(
    `SELECT ip_address, last_seen FROM ip_inventory
     WHERE enrichment_updated_at IS NULL OR enrichment_updated_at < ? OR enrichment_pending IS NOT NULL
     ORDER BY last_seen DESC, ip_address${opts.limit ? ' LIMIT ?' : ''}`,
    opts.limit ? [opts.cutoff, opts.limit] : [opts.cutoff],
  );
  return rows.map((r) => ({ ip: r.ip_address, lastSeen: r.last_seen }));
}

export interface IpRecord {
  ip: string;
  firstSeen: string | null;
  lastSeen: string | null;
  sessionCount: number;
  enrichment: Record<string, unknown>;
}

export async function readIps(db: SqlRunner, ips: string[]): Promise<Map<string, IpRecord>> {
  const out = new Map<string, IpRecord>();
  for (let k = 0; k < ips.length; k += 500) {
    const chunk = ips.slice(k, k + 500);
    const rows = await db.query<{ ip_address: string; first_seen: string | null; last_seen: string | null; session_count: number; enrichment: unknown }>(
      `SELECT ip_address, first_seen, last_seen, session_count, enrichment FROM ip_inventory WHERE ip_address IN (${inList(chunk.length)})`, chunk,
    );
    for (const r of rows) {
      out.set(r.ip_address, {
        ip: r.ip_address, firstSeen: r.first_seen, lastSeen: r.last_seen, sessionCount: Number(r.session_count),
        enrichment: readJson<Record<string, unknown>>(r.enrichment) ?? {},
      });
    }
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

export async function writeIpEnrichment(db: DialectAdapter, tx: SqlRunner, rows: IpEnrichmentRow[]): Promise<void> {
  await db.updateMany(tx, 'ip_inventory', [
    ['ip_address', 'text'], ['enrichment', 'jsonb'], ['current_asn', 'bigint'], ['geo_country', 'text'], ['is_scanner', 'boolean'],
    ['enrichment_updated_at', 'timestamptz'], ['asn_last_verified', 'timestamptz'], ['enrichment_version', 'text'], ['enrichment_pending', 'text'],
  ], rows.map((r) => [r.ip, JSON.stringify(r.enrichment), r.currentAsn, r.geoCountry, r.isScanner, r.updatedAt, r.asnVerifiedAt, r.version, r.pending]));
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

/** Upsert ASNs, then recount their IPs and sessions from ip_inventory (never incremented blindly). */
export async function upsertAsns(db: DialectAdapter, tx: SqlRunner, rows: AsnRow[]): Promise<void> {
  if (!rows.length) return;
  const a = 'asn_inventory';
  const x = 'excluded';
  await db.insertMany(tx, {
    table: a,
    columns: [['asn_number', 'bigint'], ['organization_name', 'text'], ['organization_country', 'text'], ['rir_registry', 'text'],
      ['first_seen', 'timestamptz'], ['last_seen', 'timestamptz'], ['enrichment', 'jsonb'], ['updated_at', 'timestamptz']],
    conflict: `ON CONFLICT (asn_number) DO UPDATE SET
      organization_name = coalesce(${x}.organization_name, ${a}.organization_name),
      organization_country = coalesce(${x}.organization_country, ${a}.organization_country),
      rir_registry = coalesce(${x}.rir_registry, ${a}.rir_registry),
      first_seen = ${db.least(`${a}.first_seen`, `${x}.first_seen`)},
      last_seen = ${db.greatest(`${a}.last_seen`, `${x}.last_seen`)},
      enrichment = coalesce(${x}.enrichment, ${a}.enrichment),
      updated_at = ${x}.updated_at`,
  }, rows.map((r) => [r.asn, r.name, r.country, r.registry, r.firstSeen, r.lastSeen, r.enrichment ? JSON.stringify(r.enrichment) : null, r.updatedAt]));
  const asns = rows.map((r) => r.asn);
  for (let k = 0; k < asns.length; k += 500) {
    const chunk = asns.slice(k, k + 500);
    await tx.run(
      `UPDATE ${a} SET
         unique_ip_count = (SELECT count(*) FROM ip_inventory i WHERE i.current_asn = ${a}.asn_number),
         total_session_count = (SELECT coalesce(sum(i.session_count), 0) FROM ip_inventory i WHERE i.current_asn = ${a}.asn_number)
       WHERE asn_number IN (${inList(chunk.length)})`,
      chunk,
    );
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
