/**
 * What a report reads: summary tables and report facts only (never raw_events). The per-IP
 * figures (ASNs, countries, classifications, coverage) are summed in SQL from the enrichment
 * fields; only the listed IPs come back.
 */
import ipaddr from 'ipaddr.js';
import { isPublicIp } from '../enrich/ip-scope.js';
import type { DialectAdapter, SqlRunner } from '../store/store.js';
import { planWindow, sessionFilter, type ReportWindow, type SessionRange } from './window.js';

export interface Totals {
  events: number;
  sessions: number;
  source_ips: number;
  sensors: number;
  login_attempts: number;
  successful_logins: number;
  commands: number;
  downloads: number;
}

// count(DISTINCT coalesce(sensor, '')): a sensor that logs no name (DShield's) is still one sensor.
const num = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
const str = (v: unknown) => (v === null || v === undefined ? null : String(v));

const DAILY_COLUMNS = ['sessions', 'events', 'login_attempts', 'sessions_with_logins', 'sessions_logged_in', 'successes', 'commands', 'downloads'] as const;
type DailyColumn = (typeof DAILY_COLUMNS)[number];
type DaySensorSums = { day: string; sensor: string } & Record<DailyColumn, number>;

/** `d.sensor IN (…)` for a rollup aliased d, when the window names sensors. */
function sensorFilter(w: ReportWindow, alias: string): { sql: string; params: unknown[] } {
  return w.sensors.length ? { sql: ` AND ${alias}.sensor IN (${w.sensors.map(() => '?').join(',')})`, params: [...w.sensors] } : { sql: '', params: [] };
}

/** Sessions whose first event lies in a session range (an edge day's part), on the window's sensors. */
function rangeFilter(r: SessionRange, w: ReportWindow, alias = 's'): { sql: string; params: unknown[] } {
  return sessionFilter({ since: r.from, until: r.to, sensors: w.sensors }, alias);
}

/**
 * Per day × sensor sums of a window's sessions: whole days from report_daily, edge days' parts
 * from session rows (planWindow). Rows whose sessions sum to 0 are left out.
 */
async function readDaySensorSums(db: SqlRunner, w: ReportWindow): Promise<DaySensorSums[]> {
  const plan = planWindow(w);
  const by = new Map<string, DaySensorSums>();
  const add = (r: Record<string, unknown>, sign: number) => {
    const key = `${String(r.day)}\u0001${String(r.sensor)}`;
    let row = by.get(key);
    if (!row) {
      row = { day: String(r.day), sensor: String(r.sensor) } as DaySensorSums;
      for (const c of DAILY_COLUMNS) row[c] = 0;
      by.set(key, row);
    }
    for (const c of DAILY_COLUMNS) row[c] += sign * num(r[c]);
  };
  const reads: Array<Promise<void>> = [];
  if (plan.days) {
    const sf = sensorFilter(w, 'd');
    reads.push(db.query<Record<string, unknown>>(
      `SELECT d.day, d.sensor, ${DAILY_COLUMNS.map((c) => `d.${c}`).join(', ')} FROM report_daily d WHERE d.day >= ? AND d.day <= ?${sf.sql}`,
      [plan.days.from, plan.days.to, ...sf.params],
    ).then((rows) => rows.forEach((r) => add(r, 1))));
  }
  for (const r of plan.ranges) {
    const f = rangeFilter(r, w);
    reads.push(db.query<Record<string, unknown>>(
      `SELECT substr(CAST(s.first_event_at AS TEXT), 1, 10) AS day, coalesce(s.sensor, '') AS sensor, count(*) AS sessions, sum(s.event_count) AS events,
         sum(s.login_attempts) AS login_attempts, sum(CASE WHEN s.login_attempts > 0 THEN 1 ELSE 0 END) AS sessions_with_logins,
         sum(CASE WHEN s.login_success THEN 1 ELSE 0 END) AS sessions_logged_in,
         sum((SELECT coalesce(sum(c.successes), 0) FROM session_credentials c WHERE c.session_id = s.session_id)) AS successes,
         sum(s.command_count) AS commands, sum((SELECT count(*) FROM files f WHERE f.session_id = s.session_id)) AS downloads
       FROM session_summaries s WHERE ${f.sql} GROUP BY 1, 2`, f.params,
    ).then((rows) => rows.forEach((row) => add(row, r.sign))));
  }
  await Promise.all(reads);
  return [...by.values()].filter((r) => r.sessions > 0);
}

/**
 * Totals of a window. Distinct source IPs need the sessions themselves; a summary that has already
 * grouped the window by IP passes countIps: false and fills them in.
 */
export async function readTotals(db: SqlRunner, w: ReportWindow, o: { countIps: boolean } = { countIps: true }): Promise<Totals> {
  const f = sessionFilter(w);
  const [rows, ips] = await Promise.all([
    readDaySensorSums(db, w),
    o.countIps
      ? db.query<Record<string, unknown>>(`SELECT count(DISTINCT s.source_ip) AS source_ips FROM session_summaries s WHERE ${f.sql}`, f.params)
      : Promise.resolve([{ source_ips: 0 }]),
  ]);
  const sum = (c: DailyColumn) => rows.reduce((a, r) => a + r[c], 0);
  return {
    events: sum('events'), sessions: sum('sessions'), source_ips: num(ips[0]?.source_ips), sensors: new Set(rows.map((r) => r.sensor)).size,
    login_attempts: sum('login_attempts'), successful_logins: sum('successes'), commands: sum('commands'), downloads: sum('downloads'),
  };
}

export interface DailyRow { day: string; sensor: string; sessions: number; sessionsWithLogins: number; sessionsLoggedIn: number }

export async function readDaily(db: SqlRunner, w: ReportWindow): Promise<DailyRow[]> {
  const rows = await readDaySensorSums(db, w);
  return rows
    .sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : a.sensor < b.sensor ? -1 : a.sensor > b.sensor ? 1 : 0))
    .map((r) => ({ day: r.day, sensor: r.sensor, sessions: r.sessions, sessionsWithLogins: r.sessions_with_logins, sessionsLoggedIn: r.sessions_logged_in }));
}

/** One source IP active in the window, with what the inventory knows about it. */
export interface IpStat {
  ip: string;
  sessions: number;
  firstSeen: string;
  lastSeen: string;
  sensors: number;
  /** First seen anywhere, ever (ip_inventory). */
  everFirstSeen: string | null;
  asn: number | null;
  country: string | null;
  enrichedAt: string | null;
  pending: string[];
  gnClassification: string | null;
  gnName: string | null;
  gnRiot: boolean;
  gnNoise: boolean;
  maxmindAt: string | null;
  cymruAt: string | null;
  greynoiseAt: string | null;
  cityBuild: string | null;
  asnBuild: string | null;
}

const jsonTrue = (v: unknown) => v === true || v === 1 || v === '1' || v === 'true';

type Json = Record<string, unknown>;
/** A JSON column: text on SQLite, already parsed on PostgreSQL. */
function jsonObject(v: unknown): Json | null {
  if (v === null || v === undefined) return null;
  const o = typeof v === 'string' ? JSON.parse(v) : v;
  return o !== null && typeof o === 'object' ? (o as Json) : null;
}
const field = (o: Json | null, source: string, key: string): unknown => {
  const s = o?.[source];
  return s !== null && typeof s === 'object' ? (s as Json)[key] : undefined;
};
const jsonText = (v: unknown) => (v === null || v === undefined ? null : typeof v === 'string' ? v : JSON.stringify(v));

export async function readIpStats(db: SqlRunner, w: ReportWindow): Promise<IpStat[]> {
  const f = sessionFilter(w);
  // Sessions are grouped from session_summaries_ip_window alone (it holds every column used);
  // then one inventory row per IP, its enrichment JSON parsed here once per IP.
  const rows = await db.query<Record<string, unknown>>(
    `SELECT a.ip, a.sessions, a.first_seen, a.last_seen, a.sensors, i.first_seen AS ever_first_seen, i.current_asn, i.geo_country,
       i.enrichment_updated_at, i.enrichment_pending, i.enrichment
     FROM (SELECT s.source_ip AS ip, count(*) AS sessions, min(s.first_event_at) AS first_seen, max(s.last_event_at) AS last_seen,
             count(DISTINCT coalesce(s.sensor, '')) AS sensors
           FROM session_summaries s WHERE ${f.sql} AND s.source_ip IS NOT NULL GROUP BY s.source_ip) a
     LEFT JOIN ip_inventory i ON i.ip_address = a.ip`, f.params,
  );
  return rows.map((r) => {
    const e = jsonObject(r.enrichment);
    return {
      ip: String(r.ip), sessions: num(r.sessions), firstSeen: String(r.first_seen), lastSeen: String(r.last_seen), sensors: num(r.sensors),
      everFirstSeen: str(r.ever_first_seen), asn: r.current_asn === null || r.current_asn === undefined ? null : Number(r.current_asn),
      country: str(r.geo_country), enrichedAt: str(r.enrichment_updated_at),
      pending: r.enrichment_pending ? String(r.enrichment_pending).split(',').filter(Boolean) : [],
      gnClassification: jsonText(field(e, 'greynoise', 'classification')), gnName: jsonText(field(e, 'greynoise', 'name')),
      gnRiot: jsonTrue(field(e, 'greynoise', 'riot')), gnNoise: jsonTrue(field(e, 'greynoise', 'noise')),
      maxmindAt: jsonText(field(e, 'maxmind', 'fetched_at')), cymruAt: jsonText(field(e, 'cymru', 'fetched_at')),
      greynoiseAt: jsonText(field(e, 'greynoise', 'fetched_at')),
      cityBuild: jsonText(field(e, 'maxmind', 'city_db_build')), asnBuild: jsonText(field(e, 'maxmind', 'asn_db_build')),
    };
  });
}

/** What the report reads through: SQL, and byte-order text comparison (the same order as JavaScript's `<`). */
export type ReportDb = SqlRunner & Pick<DialectAdapter, 'binaryText' | 'jsonText' | 'types'>;

/** One listed source IP (the ips view, new IPs): the IpStat fields those views show. */
export type IpRow = Pick<IpStat, 'ip' | 'sessions' | 'firstSeen' | 'lastSeen' | 'sensors' | 'everFirstSeen' | 'asn' | 'country' | 'enrichedAt' | 'gnClassification' | 'gnName' | 'greynoiseAt'>;

/** Sessions and IPs per ASN × GreyNoise classification (see classificationOf). */
export interface AsnClassGroup { asn: number | null; classification: string; ips: number; sessions: number }
export interface CountryGroup { country: string | null; ips: number; sessions: number }
export interface SourceCoverage { answered: number; oldest: string | null; newest: string | null; pending: number }
/** Enrichment coverage of the window's public IPs. */
export interface IpCoverage {
  items: number;
  unenriched: number;
  sources: Record<'maxmind' | 'cymru' | 'greynoise', SourceCoverage>;
  cityBuild: string | null;
  asnBuild: string | null;
}

/** The window's IPs summed in SQL: groups, coverage and the few IPs a report lists (never one row per IP). */
export interface IpSummary {
  ips: number;
  sessions: number;
  byAsn: AsnClassGroup[];
  byCountry: CountryGroup[];
  /** The ips view's list: most sessions first, at most `limit`, after its filters. */
  top: IpRow[];
  /** IPs never seen before the window, earliest first, at most `limit`. */
  fresh: IpRow[];
  /** ASNs of the window's IPs first seen (any IP of theirs) in or after the window, earliest first, at most `limit`. */
  freshAsns: Array<{ asn: number; firstSeen: string }>;
  coverage: IpCoverage;
}

export interface IpSummaryOptions {
  limit: number;
  filter: { classification?: string; newOnly?: boolean; minSessions?: number };
}

const IP_SOURCES = ['maxmind', 'cymru', 'greynoise'] as const;

/**
 * Leading octets (`10.`, `172.`, …) of every IPv4 range ipaddr.js does not call unicast, and any
 * IPv6 address: a superset of the non-public addresses, checked one by one with isPublicIp. Every
 * other stored address (ingest stores normalised addresses) is public without parsing it.
 */
const NOT_PUBLIC_OCTETS: number[] = (() => {
  const octets = new Set<number>();
  const ranges = (ipaddr.IPv4.prototype as unknown as { SpecialRanges: Record<string, [ipaddr.IPv4, number] | Array<[ipaddr.IPv4, number]>> }).SpecialRanges;
  for (const v of Object.values(ranges)) {
    const list = (Array.isArray(v[0]) ? v : [v]) as Array<[ipaddr.IPv4, number]>;
    for (const [addr, bits] of list) {
      for (let k = 0; k < (bits >= 8 ? 1 : 2 ** (8 - bits)); k++) octets.add(addr.octets[0] + k);
    }
  }
  return [...octets].sort((a, b) => a - b);
})();

function maybeNotPublic(ip: string): string {
  const byLength = new Map<number, string[]>();
  for (const o of NOT_PUBLIC_OCTETS) {
    const prefix = `${o}.`;
    byLength.set(prefix.length, [...(byLength.get(prefix.length) ?? []), `'${prefix}'`]);
  }
  return [`${ip} LIKE '%:%'`, ...[...byLength].map(([n, list]) => `substr(${ip}, 1, ${n}) IN (${list.join(', ')})`)].join(' OR ');
}

const ts = (v: unknown) => (v === null || v === undefined ? null : String(v));
const minText = (a: string | null, b: string | null) => (a === null ? b : b === null ? a : a < b ? a : b);
const maxText = (a: string | null, b: string | null) => (a === null ? b : b === null ? a : a > b ? a : b);

/**
 * Everything the asns, countries, ips, new and coverage views need about the window's IPs, in one
 * statement: the sessions are grouped per IP once (a materialised CTE, from the covering index
 * session_summaries_ip_window), joined to the inventory once, and every figure is a GROUP BY over
 * that; only groups and the listed IPs come back. Enrichment JSON is read in SQL (jsonText), never
 * parsed here.
 */
export async function readIpSummary(db: ReportDb, w: ReportWindow, o: IpSummaryOptions): Promise<IpSummary> {
  const f = sessionFilter(w);
  // Keys are our own words (never attacker text), written into the SQL.
  const json = (...path: string[]) => db.jsonText('i.enrichment', path);
  const gc = json('greynoise', 'classification');
  const at = (source: string) => json(source, 'fetched_at');
  const bin = (e: string) => db.binaryText(e);
  // Columns of every arm of the UNION (NULL where an arm has none).
  // Columns of every arm of the UNION, with their types (PostgreSQL needs typed NULLs to match the arms).
  const { ts: T, bigint: B } = db.types;
  const COLS = {
    kind: 'TEXT', ip: 'TEXT', asn: B, country: 'TEXT', cls: 'TEXT', gn_name: 'TEXT', ips: B, sessions: B,
    first_seen: T, last_seen: T, ever: T, enriched_at: T, t_min: 'TEXT', t_max: 'TEXT',
  } as const;
  type Col = keyof typeof COLS;
  const arm = (v: Partial<Record<Col, string>>, rest: string) =>
    `SELECT ${(Object.keys(COLS) as Col[]).map((c) => `${v[c] ?? `CAST(NULL AS ${COLS[c]})`} AS ${c}`).join(', ')} ${rest}`;
  const listed = (kind: string) => ({
    kind: `'${kind}'`, ip: 'ip', asn: 'asn', country: 'country', cls: 'gc', gn_name: 'gn_name', sessions: 'sessions',
    first_seen: 'first_seen', last_seen: 'last_seen', ever: 'ever', enriched_at: 'enriched_at', t_min: 'gn_at',
  });
  const topWhere: string[] = ['1 = 1'];
  const topParams: unknown[] = [];
  if (o.filter.classification !== undefined) { topWhere.push('cls = ?'); topParams.push(o.filter.classification); }
  if (o.filter.newOnly) { topWhere.push('(ever IS NULL OR ever >= ?)'); topParams.push(w.since); }
  if (o.filter.minSessions !== undefined) { topWhere.push('sessions >= ?'); topParams.push(o.filter.minSessions); }
  const arms = [
    arm({ kind: "'asn'", asn: 'asn', cls: 'cls', ips: 'count(*)', sessions: 'sum(sessions)' }, 'FROM j GROUP BY asn, cls'),
    arm({ kind: "'country'", country: 'country', ips: 'count(*)', sessions: 'sum(sessions)' }, 'FROM j GROUP BY country'),
    `SELECT * FROM (${arm(listed('top'), `FROM j WHERE ${topWhere.join(' AND ')} ORDER BY sessions DESC, ${bin('ip')} LIMIT ?`)}) t`,
    `SELECT * FROM (${arm(listed('new'), `FROM j WHERE ever IS NULL OR ever >= ? ORDER BY coalesce(ever, first_seen), ${bin('ip')} LIMIT ?`)}) n`,
    `SELECT * FROM (${arm({ kind: "'new_asn'", asn: 'current_asn', ever: 'min(first_seen)' },
      `FROM ip_inventory WHERE current_asn IN (SELECT asn FROM j WHERE asn IS NOT NULL) GROUP BY current_asn
       HAVING min(first_seen) >= ? ORDER BY min(first_seen), current_asn LIMIT ?`)}) a`,
    // Coverage of the IPs that are surely public; the others come back one by one (kind 'check').
    ...IP_SOURCES.map((s) => arm({
      kind: `'${s}'`, ips: `count(${s}_at)`, sessions: `sum(CASE WHEN (',' || coalesce(pending, '') || ',') LIKE '%,${s},%' THEN 1 ELSE 0 END)`,
      t_min: `min(${bin(`${s}_at`)})`, t_max: `max(${bin(`${s}_at`)})`,
    }, 'FROM j WHERE NOT special')),
    arm({ kind: "'public'", ips: 'count(*)', sessions: 'sum(CASE WHEN enriched_at IS NULL THEN 1 ELSE 0 END)', t_min: `max(${bin('city_build')})`, t_max: `max(${bin('asn_build')})` },
      'FROM j WHERE NOT special'),
    arm({ kind: "'check'", ip: 'ip' }, 'FROM j WHERE special'),
  ];
  const rows = await db.query<Record<string, unknown>>(
    `WITH a AS MATERIALIZED (
       SELECT s.source_ip AS ip, count(*) AS sessions, min(s.first_event_at) AS first_seen, max(s.last_event_at) AS last_seen
       FROM session_summaries s WHERE ${f.sql} AND s.source_ip IS NOT NULL GROUP BY s.source_ip),
     e AS (
       SELECT a.ip, a.sessions, a.first_seen, a.last_seen, i.first_seen AS ever, i.current_asn AS asn, i.geo_country AS country,
         i.enrichment_updated_at AS enriched_at, i.enrichment_pending AS pending, ${gc} AS gc,
         ${json('greynoise', 'name')} AS gn_name, ${IP_SOURCES.map((s) => `${at(s)} AS ${s}_at`).join(', ')},
         ${json('maxmind', 'city_db_build')} AS city_build, ${json('maxmind', 'asn_db_build')} AS asn_build,
         CASE WHEN ${maybeNotPublic('a.ip')} THEN 1 ELSE 0 END = 1 AS special
       FROM a LEFT JOIN ip_inventory i ON i.ip_address = a.ip),
     j AS MATERIALIZED (
       SELECT e.*, e.greynoise_at AS gn_at,
         CASE WHEN gc IS NOT NULL AND gc <> '' THEN gc WHEN greynoise_at IS NOT NULL AND greynoise_at <> '' THEN 'not_observed' ELSE 'unenriched' END AS cls
       FROM e)
     ${arms.join('\n     UNION ALL ')}`,
    [...f.params, ...topParams, o.limit, w.since, o.limit, w.since, o.limit],
  );
  const out: IpSummary = {
    ips: 0, sessions: 0, byAsn: [], byCountry: [], top: [], fresh: [], freshAsns: [],
    coverage: {
      items: 0, unenriched: 0, cityBuild: null, asnBuild: null,
      sources: { maxmind: { answered: 0, oldest: null, newest: null, pending: 0 }, cymru: { answered: 0, oldest: null, newest: null, pending: 0 }, greynoise: { answered: 0, oldest: null, newest: null, pending: 0 } },
    },
  };
  const toRow = (r: Record<string, unknown>): IpRow => ({
    ip: String(r.ip), sessions: num(r.sessions), firstSeen: String(r.first_seen), lastSeen: String(r.last_seen), sensors: 0,
    everFirstSeen: ts(r.ever), asn: r.asn === null || r.asn === undefined ? null : Number(r.asn), country: str(r.country),
    enrichedAt: ts(r.enriched_at), gnClassification: str(r.cls),
    gnName: str(r.gn_name), greynoiseAt: str(r.t_min),
  });
  const check: string[] = [];
  for (const r of rows) {
    switch (r.kind) {
      case 'asn':
        out.byAsn.push({ asn: r.asn === null || r.asn === undefined ? null : Number(r.asn), classification: String(r.cls), ips: num(r.ips), sessions: num(r.sessions) });
        out.ips += num(r.ips);
        out.sessions += num(r.sessions);
        break;
      case 'country': out.byCountry.push({ country: str(r.country), ips: num(r.ips), sessions: num(r.sessions) }); break;
      case 'top': out.top.push(toRow(r)); break;
      case 'new': out.fresh.push(toRow(r)); break;
      case 'new_asn': out.freshAsns.push({ asn: Number(r.asn), firstSeen: String(r.ever) }); break;
      case 'public':
        out.coverage.items += num(r.ips);
        out.coverage.unenriched += num(r.sessions);
        out.coverage.cityBuild = str(r.t_min);
        out.coverage.asnBuild = str(r.t_max);
        break;
      case 'check': check.push(String(r.ip)); break;
      default: {
        const c = out.coverage.sources[r.kind as (typeof IP_SOURCES)[number]];
        c.answered = num(r.ips);
        c.pending = num(r.sessions);
        c.oldest = str(r.t_min);
        c.newest = str(r.t_max);
      }
    }
  }
  // Same order as the views sort in: ties by IP, byte order (SQL ordered them the same way).
  await Promise.all([addSensors(db, w, out.top), addCoverage(db, check.filter(isPublicIp), out.coverage)]);
  return out;
}

/** Distinct sensors of the listed IPs in the window (a per-IP figure too costly for every IP). */
async function addSensors(db: SqlRunner, w: ReportWindow, list: IpRow[]): Promise<void> {
  if (!list.length) return;
  const f = sessionFilter(w);
  const rows = await db.query<Record<string, unknown>>(
    `SELECT s.source_ip AS ip, count(DISTINCT coalesce(s.sensor, '')) AS sensors FROM session_summaries s
     WHERE s.source_ip IN (${list.map(() => '?').join(',')}) AND ${f.sql} GROUP BY s.source_ip`, [...list.map((r) => r.ip), ...f.params],
  );
  const by = new Map(rows.map((r) => [String(r.ip), num(r.sensors)]));
  for (const r of list) r.sensors = by.get(r.ip) ?? 0;
}

/** Adds public IPs whose leading octet SQL could not vouch for (read by key from the inventory). */
async function addCoverage(db: SqlRunner, ips: string[], c: IpCoverage): Promise<void> {
  c.items += ips.length;
  const found = new Set<string>();
  for (let k = 0; k < ips.length; k += 500) {
    const chunk = ips.slice(k, k + 500);
    const rows = await db.query<Record<string, unknown>>(
      `SELECT ip_address, enrichment_updated_at, enrichment_pending, enrichment FROM ip_inventory WHERE ip_address IN (${chunk.map(() => '?').join(',')})`, chunk,
    );
    for (const r of rows) {
      found.add(String(r.ip_address));
      if (r.enrichment_updated_at === null || r.enrichment_updated_at === undefined) c.unenriched++;
      const e = jsonObject(r.enrichment);
      const pending = r.enrichment_pending ? String(r.enrichment_pending).split(',') : [];
      for (const s of IP_SOURCES) {
        const t = jsonText(field(e, s, 'fetched_at'));
        const sc = c.sources[s];
        if (t !== null) { sc.answered++; sc.oldest = minText(sc.oldest, t); sc.newest = maxText(sc.newest, t); }
        if (pending.includes(s)) sc.pending++;
      }
      c.cityBuild = maxText(c.cityBuild, jsonText(field(e, 'maxmind', 'city_db_build')));
      c.asnBuild = maxText(c.asnBuild, jsonText(field(e, 'maxmind', 'asn_db_build')));
    }
  }
  // An IP with sessions but no inventory row has no answer from anyone.
  c.unenriched += ips.filter((ip) => !found.has(ip)).length;
}

export interface AsnInfo { name: string | null; country: string | null; firstSeen: string | null }

/** Names and registry countries of these ASNs, and when any IP of each was first seen. */
export async function readAsns(db: SqlRunner, asns: number[]): Promise<Map<number, AsnInfo>> {
  const out = new Map<number, AsnInfo>();
  for (let k = 0; k < asns.length; k += 500) {
    const chunk = asns.slice(k, k + 500);
    const marks = chunk.map(() => '?').join(',');
    const named = await db.query<Record<string, unknown>>(
      `SELECT asn_number, organization_name, organization_country FROM asn_inventory WHERE asn_number IN (${marks})`, chunk,
    );
    for (const r of named) out.set(Number(r.asn_number), { name: str(r.organization_name), country: str(r.organization_country), firstSeen: null });
    const seen = await db.query<Record<string, unknown>>(
      `SELECT current_asn, min(first_seen) AS first_seen FROM ip_inventory WHERE current_asn IN (${marks}) GROUP BY current_asn`, chunk,
    );
    for (const r of seen) {
      const asn = Number(r.current_asn);
      const info = out.get(asn) ?? { name: null, country: null, firstSeen: null };
      info.firstSeen = str(r.first_seen);
      out.set(asn, info);
    }
  }
  return out;
}

export interface CredentialRow { username: string | null; password: string | null; attempts: number; successes: number; ips: number }
export interface CommandRow { command: string | null; count: number; sessions: number; ips: number }

/** A top list over a rollup: credentials by attempts, commands by executions. */
interface TopSpec {
  hash: string;
  /** The ranking count and any other summed count, as named in the day and totals tables. */
  rank: string;
  extra: string[];
  days: string;
  totals: string;
  facts: string;
}
const CREDENTIALS: TopSpec = { hash: 'credential_hash', rank: 'attempts', extra: ['successes'], days: 'report_credential_days', totals: 'report_credential_totals', facts: 'session_credentials' };
const COMMANDS: TopSpec = { hash: 'command_hash', rank: 'executions', extra: [], days: 'report_command_days', totals: 'report_command_totals', facts: 'session_commands' };

interface Ranked { hash: string; sums: number[] }
/** Larger first, then by hash: the order of `ORDER BY count DESC, hash`. */
const byRank = (a: Ranked, b: Ranked) => b.sums[0] - a.sums[0] || (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0);
const TOTALS_PAGE = 500;
/** Past this many candidates a full pass over the window's rollup rows is cheaper. */
const SCAN_LIMIT = 10_000;

/**
 * The `limit` values with the largest count in the window. The all-time total of a value bounds its
 * count in any window, so values are read in order of their total and reading stops once the next
 * total is below the last place of the list (a window holding most of the history stops after about
 * `limit` values); when that would read too many, one pass sums every rollup row of the window.
 */
async function readTop(db: SqlRunner, w: ReportWindow, limit: number, t: TopSpec, o: { scanLimit?: number } = {}): Promise<Ranked[]> {
  const plan = planWindow(w);
  const cols = [t.rank, ...t.extra];
  const edge = new Map<string, number[]>();
  const add = (m: Map<string, number[]>, r: Record<string, unknown>, sign: number) => {
    const h = String(r[t.hash]);
    const v = m.get(h) ?? cols.map(() => 0);
    cols.forEach((c, i) => (v[i] += sign * num(r[c])));
    m.set(h, v);
  };
  await Promise.all(plan.ranges.map(async (r) => {
    const f = rangeFilter(r, w);
    const rows = await db.query<Record<string, unknown>>(
      `SELECT c.${t.hash}, ${cols.map((c) => `sum(c.${c}) AS ${c}`).join(', ')} FROM session_summaries s JOIN ${t.facts} c ON c.session_id = s.session_id
       WHERE ${f.sql} GROUP BY c.${t.hash}`, f.params,
    );
    for (const row of rows) add(edge, row, r.sign);
  }));
  const ranked = (m: Map<string, number[]>) => [...m].map(([hash, sums]) => ({ hash, sums })).filter((x) => x.sums[0] > 0).sort(byRank);
  if (!plan.days) return ranked(edge).slice(0, limit);
  const days = plan.days;
  const sf = sensorFilter(w, 'd');
  const sumDays = async (hashes: string[] | null) => {
    const m = new Map<string, number[]>();
    const inList = hashes ? ` AND d.${t.hash} IN (${hashes.map(() => '?').join(',')})` : '';
    const rows = await db.query<Record<string, unknown>>(
      `SELECT d.${t.hash}, ${cols.map((c) => `sum(d.${c}) AS ${c}`).join(', ')} FROM ${t.days} d
       WHERE d.day >= ? AND d.day <= ?${sf.sql}${inList} GROUP BY d.${t.hash}`,
      [days.from, days.to, ...sf.params, ...(hashes ?? [])],
    );
    for (const r of rows) add(m, r, 1);
    const wanted = hashes ? new Set(hashes) : null;
    for (const [h, v] of edge) if (!wanted || wanted.has(h)) m.set(h, (m.get(h) ?? cols.map(() => 0)).map((x, i) => x + v[i]));
    return m;
  };
  const scanLimit = o.scanLimit ?? SCAN_LIMIT;
  if (limit * 2 > scanLimit) return ranked(await sumDays(null)).slice(0, limit);
  const best: Ranked[] = [];
  let after: { total: number; hash: string } | null = null;
  for (let scanned = 0; ; scanned += TOTALS_PAGE) {
    if (scanned >= scanLimit) return ranked(await sumDays(null)).slice(0, limit);
    const page: Array<Record<string, unknown>> = await db.query<Record<string, unknown>>(
      `SELECT ${t.hash}, ${t.rank} FROM ${t.totals}${after ? ` WHERE ${t.rank} < ? OR (${t.rank} = ? AND ${t.hash} < ?)` : ''}
       ORDER BY ${t.rank} DESC, ${t.hash} DESC LIMIT ?`,
      after ? [after.total, after.total, after.hash, TOTALS_PAGE] : [TOTALS_PAGE],
    );
    if (!page.length) break;
    const floor = () => (best.length >= limit ? best[limit - 1].sums[0] : 0);
    // Nothing on this page can reach the list: stop before reading its rollup rows.
    if (best.length >= limit && num(page[0][t.rank]) < floor()) break;
    const sums = await sumDays(page.map((r) => String(r[t.hash])));
    let done = false;
    for (const r of page) {
      if (best.length >= limit && num(r[t.rank]) < floor()) { done = true; break; }
      const v = sums.get(String(r[t.hash]));
      if (!v || v[0] <= 0) continue;
      best.push({ hash: String(r[t.hash]), sums: v });
      best.sort(byRank);
      if (best.length > limit) best.length = limit;
    }
    if (done || page.length < TOTALS_PAGE) break;
    const lastRow = page[page.length - 1];
    after = { total: num(lastRow[t.rank]), hash: String(lastRow[t.hash]) };
  }
  return best;
}

/** Sessions and distinct source IPs of these values in the window (few values: the list shown). */
async function readSpread(db: SqlRunner, w: ReportWindow, t: TopSpec, hashes: string[]): Promise<Map<string, { sessions: number; ips: number }>> {
  const out = new Map<string, { sessions: number; ips: number }>();
  if (!hashes.length) return out;
  const f = sessionFilter(w);
  for (let k = 0; k < hashes.length; k += 500) {
    const chunk = hashes.slice(k, k + 500);
    const rows = await db.query<Record<string, unknown>>(
      `SELECT c.${t.hash} AS hash, count(*) AS sessions, count(DISTINCT s.source_ip) AS ips
       FROM ${t.facts} c JOIN session_summaries s ON s.session_id = c.session_id
       WHERE c.${t.hash} IN (${chunk.map(() => '?').join(',')}) AND ${f.sql} GROUP BY c.${t.hash}`, [...chunk, ...f.params],
    );
    for (const r of rows) out.set(String(r.hash), { sessions: num(r.sessions), ips: num(r.ips) });
  }
  return out;
}

async function readTotalsText(db: SqlRunner, t: TopSpec, columns: string[], hashes: string[]): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  for (let k = 0; k < hashes.length; k += 500) {
    const chunk = hashes.slice(k, k + 500);
    const rows = await db.query<Record<string, unknown>>(
      `SELECT ${t.hash} AS hash, ${columns.join(', ')} FROM ${t.totals} WHERE ${t.hash} IN (${chunk.map(() => '?').join(',')})`, chunk,
    );
    for (const r of rows) out.set(String(r.hash), r);
  }
  return out;
}

export async function readCredentials(db: SqlRunner, w: ReportWindow, limit: number, o: { scanLimit?: number } = {}): Promise<CredentialRow[]> {
  const top = await readTop(db, w, limit, CREDENTIALS, o);
  const hashes = top.map((x) => x.hash);
  const [spread, text] = await Promise.all([readSpread(db, w, CREDENTIALS, hashes), readTotalsText(db, CREDENTIALS, ['username', 'password'], hashes)]);
  return top.map((x) => ({
    username: str(text.get(x.hash)?.username), password: str(text.get(x.hash)?.password), attempts: x.sums[0], successes: x.sums[1],
    ips: spread.get(x.hash)?.ips ?? 0,
  }));
}

export async function readCommands(db: SqlRunner, w: ReportWindow, limit: number, o: { scanLimit?: number } = {}): Promise<CommandRow[]> {
  const top = await readTop(db, w, limit, COMMANDS, o);
  const hashes = top.map((x) => x.hash);
  const [spread, text] = await Promise.all([readSpread(db, w, COMMANDS, hashes), readTotalsText(db, COMMANDS, ['command'], hashes)]);
  return top.map((x) => ({
    command: str(text.get(x.hash)?.command), count: x.sums[0], sessions: spread.get(x.hash)?.sessions ?? 0, ips: spread.get(x.hash)?.ips ?? 0,
  }));
}

export interface FileRow {
  sha256: string;
  url: string | null;
  filename: string | null;
  firstSeen: string | null;
  /** First seen anywhere, ever. */
  everFirstSeen: string | null;
  sessions: number;
  ips: number;
  malicious: number | null;
  total: number | null;
  label: string | null;
  status: string;
  /** When VirusTotal's answer (or failure) was recorded. */
  updatedAt: string | null;
}

/** Files downloaded in the window's sessions, one row per SHA-256 (its URL and name from its earliest session). */
export async function readFiles(db: SqlRunner, w: ReportWindow): Promise<FileRow[]> {
  const f = sessionFilter(w);
  const rows = await db.query<Record<string, unknown>>(
    `SELECT f.shasum, f.url, f.filename, f.first_seen, f.enrichment_status, f.vt_malicious, f.vt_suspicious, f.vt_harmless, f.vt_undetected,
       f.vt_label, f.enrichment_updated_at, s.source_ip
     FROM session_summaries s JOIN files f ON f.session_id = s.session_id WHERE ${f.sql}`, f.params,
  );
  const by = new Map<string, FileRow & { ipSet: Set<string> }>();
  for (const r of rows) {
    const sha = String(r.shasum);
    const vt = [r.vt_malicious, r.vt_suspicious, r.vt_harmless, r.vt_undetected];
    const total = vt.every((v) => v === null || v === undefined) ? null : vt.reduce<number>((a, v) => a + num(v), 0);
    let row = by.get(sha);
    if (!row) {
      row = {
        sha256: sha, url: str(r.url), filename: str(r.filename), firstSeen: str(r.first_seen), everFirstSeen: null, sessions: 0, ips: 0,
        malicious: r.vt_malicious === null || r.vt_malicious === undefined ? null : num(r.vt_malicious), total, label: str(r.vt_label),
        status: String(r.enrichment_status), updatedAt: str(r.enrichment_updated_at), ipSet: new Set(),
      };
      by.set(sha, row);
    } else if (r.first_seen !== null && (row.firstSeen === null || String(r.first_seen) < row.firstSeen)) {
      row.firstSeen = String(r.first_seen);
      row.url = str(r.url);
      row.filename = str(r.filename);
    }
    row.sessions++;
    if (r.source_ip) row.ipSet.add(String(r.source_ip));
  }
  const shas = [...by.keys()];
  for (let k = 0; k < shas.length; k += 500) {
    const chunk = shas.slice(k, k + 500);
    const seen = await db.query<Record<string, unknown>>(
      `SELECT shasum, min(first_seen) AS first_seen FROM files WHERE shasum IN (${chunk.map(() => '?').join(',')}) GROUP BY shasum`, chunk,
    );
    for (const r of seen) by.get(String(r.shasum))!.everFirstSeen = str(r.first_seen);
  }
  return [...by.values()].map(({ ipSet, ...row }) => ({ ...row, ips: ipSet.size }))
    .sort((a, b) => b.sessions - a.sessions || a.sha256.localeCompare(b.sha256));
}

export interface NewValue { value: string | null; firstSeen: string }

/**
 * Passwords or commands never seen anywhere before the window; with sensors, only those that
 * appeared on one of them in the window (their first sighting there is no later than its end).
 */
export async function readNewValues(db: SqlRunner, w: ReportWindow, kind: 'password' | 'command'): Promise<NewValue[]> {
  const sensorCond = w.sensors.length
    ? ` AND min(CASE WHEN sensor IN (${w.sensors.map(() => '?').join(',')}) THEN first_seen END) <= ?` : '';
  const rows = await db.query<Record<string, unknown>>(
    `SELECT value_hash, min(value) AS value, min(first_seen) AS first_seen FROM first_seen_values WHERE kind = ?
     GROUP BY value_hash HAVING min(first_seen) >= ? AND min(first_seen) <= ?${sensorCond}
     ORDER BY first_seen, value_hash`,
    [kind, w.since, w.until, ...(w.sensors.length ? [...w.sensors, w.until] : [])],
  );
  return rows.map((r) => ({ value: str(r.value), firstSeen: String(r.first_seen) }));
}
