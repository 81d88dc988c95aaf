/**
 * The report's views as tables: each a list of columns (snake_case keys, the JSON field names)
 * and rows. Every format (table, CSV, JSON, HTML) renders these same rows, so they agree.
 */
import type { AsnClassGroup, AsnInfo, CommandRow, CountryGroup, CredentialRow, DailyRow, FileRow, IpCoverage, IpRow, NewValue, Totals } from './data.js';
import type { ReportWindow } from './window.js';

export const VIEWS = ['summary', 'totals', 'new', 'asns', 'countries', 'ips', 'credentials', 'commands', 'files', 'coverage', 'blocklist'] as const;
export type ViewName = (typeof VIEWS)[number];
/** The views `summary` holds, in report order. */
export const SUMMARY_VIEWS = ['totals', 'new', 'asns', 'countries', 'ips', 'credentials', 'commands', 'files', 'coverage'] as const;
export type TableView = (typeof SUMMARY_VIEWS)[number];

export type Cell = string | number | boolean | null | Record<string, number>;
export type Row = Record<string, Cell>;
export interface Column {
  key: string;
  /** Attacker-controlled text (escaped for every format; numbers and our own words are not). */
  hostile?: boolean;
  numeric?: boolean;
}
export interface ViewTable { view: TableView; title: string; columns: Column[]; rows: Row[] }

const col = (key: string, o: Omit<Column, 'key'> = {}): Column => ({ key, ...o });
const n = (key: string) => col(key, { numeric: true });
const share = (part: number, whole: number) => (whole ? Math.round((part / whole) * 10_000) / 10_000 : 0);

/** GreyNoise's word for an IP: its classification, `not_observed` when it has never seen it, `unenriched` without an answer. */
export function classificationOf(ip: Pick<IpRow, 'gnClassification' | 'greynoiseAt'>): string {
  if (ip.gnClassification) return ip.gnClassification;
  return ip.greynoiseAt ? 'not_observed' : 'unenriched';
}

/** New in the window: never seen anywhere before it. */
export const isNewIp = (ip: Pick<IpRow, 'everFirstSeen'>, w: ReportWindow) => ip.everFirstSeen === null || ip.everFirstSeen >= w.since;

export function totalsTable(current: Totals, previous: Totals): ViewTable {
  const rows = (Object.keys(current) as Array<keyof Totals>).map((k) => ({ metric: k, current: current[k], previous: previous[k], change: current[k] - previous[k] }));
  return { view: 'totals', title: 'Totals', columns: [col('metric'), n('current'), n('previous'), n('change')], rows };
}

export function totalsJson(current: Totals, previous: Totals): { current: Totals; previous: Totals; change: Totals } {
  const change = {} as Totals;
  for (const k of Object.keys(current) as Array<keyof Totals>) change[k] = current[k] - previous[k];
  return { current, previous, change };
}

/** IPs per GreyNoise classification, largest first. */
export function classificationMix(groups: AsnClassGroup[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const g of groups) m[g.classification] = (m[g.classification] ?? 0) + g.ips;
  return Object.fromEntries(Object.entries(m).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

export function asnsTable(groups: AsnClassGroup[], asns: Map<number, AsnInfo>, totalSessions: number, limit: number): ViewTable {
  const by = new Map<number | null, AsnClassGroup[]>();
  for (const g of groups) {
    const list = by.get(g.asn);
    if (list) list.push(g);
    else by.set(g.asn, [g]);
  }
  const rows: Row[] = [...by.entries()].map(([asn, list]) => {
    const sessions = list.reduce((a, g) => a + g.sessions, 0);
    const info = asn === null ? undefined : asns.get(asn);
    return { asn, name: info?.name ?? null, country: info?.country ?? null, ips: list.reduce((a, g) => a + g.ips, 0), sessions, share: share(sessions, totalSessions), classification: classificationMix(list) };
  });
  rows.sort((a, b) => (b.sessions as number) - (a.sessions as number) || (a.asn === null ? 1 : b.asn === null ? -1 : (a.asn as number) - (b.asn as number)));
  return {
    view: 'asns', title: 'Top ASNs',
    columns: [n('asn'), col('name', { hostile: true }), col('country', { hostile: true }), n('ips'), n('sessions'), n('share'), col('classification')],
    rows: rows.slice(0, limit),
  };
}

/** The ASNs asnsTable lists (for reading their names). */
export function topAsns(groups: AsnClassGroup[], limit: number): number[] {
  const sessions = new Map<number | null, number>();
  for (const g of groups) sessions.set(g.asn, (sessions.get(g.asn) ?? 0) + g.sessions);
  return [...sessions].sort(([a, x], [b, y]) => y - x || (a === null ? 1 : b === null ? -1 : a - b)).slice(0, limit)
    .map(([asn]) => asn).filter((a): a is number => a !== null);
}

export function countriesTable(groups: CountryGroup[], totalSessions: number, limit: number): ViewTable {
  const rows: Row[] = groups
    .map((c) => ({ country: c.country, ips: c.ips, sessions: c.sessions, share: share(c.sessions, totalSessions) }))
    .sort((a, b) => b.sessions - a.sessions || String(a.country ?? '~').localeCompare(String(b.country ?? '~')));
  return { view: 'countries', title: 'Countries', columns: [col('country', { hostile: true }), n('ips'), n('sessions'), n('share')], rows: rows.slice(0, limit) };
}

export interface IpFilter { classification?: string; newOnly?: boolean; minSessions?: number }

/** Code-unit order (what SQL's byte order gives): IPs tie-break the same in SQL and here. */
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The listed IPs (already filtered and cut to the limit by readIpSummary). */
export function ipsTable(ips: IpRow[], w: ReportWindow, now: Date): ViewTable {
  const ageDays = (at: string | null) => (at === null ? null : Math.round(((now.getTime() - Date.parse(at)) / 86_400_000) * 10) / 10);
  const rows = ips
    .slice()
    .sort((a, b) => b.sessions - a.sessions || byText(a.ip, b.ip))
    .map((ip): Row => ({
      ip: ip.ip, sessions: ip.sessions, first_seen: ip.firstSeen, last_seen: ip.lastSeen, sensors: ip.sensors, asn: ip.asn, country: ip.country,
      classification: classificationOf(ip), greynoise_name: ip.gnName, new: isNewIp(ip, w), enrichment_age_days: ageDays(ip.enrichedAt),
    }));
  return {
    view: 'ips', title: 'Source IPs',
    columns: [col('ip'), n('sessions'), col('first_seen'), col('last_seen'), n('sensors'), n('asn'), col('country', { hostile: true }),
      col('classification', { hostile: true }), col('greynoise_name', { hostile: true }), col('new'), n('enrichment_age_days')],
    rows,
  };
}

export function credentialsTable(rows: CredentialRow[]): ViewTable {
  return {
    view: 'credentials', title: 'Credentials',
    columns: [col('username', { hostile: true }), col('password', { hostile: true }), n('attempts'), n('successes'), n('ips')],
    rows: rows.map((r) => ({ ...r })),
  };
}

export function commandsTable(rows: CommandRow[]): ViewTable {
  return { view: 'commands', title: 'Commands', columns: [col('command', { hostile: true }), n('count'), n('sessions'), n('ips')], rows: rows.map((r) => ({ ...r })) };
}

export function filesTable(files: FileRow[], limit: number): ViewTable {
  return {
    view: 'files', title: 'Files',
    columns: [col('sha256', { hostile: true }), col('url', { hostile: true }), col('filename', { hostile: true }), n('sessions'), n('ips'),
      n('vt_malicious'), n('vt_total'), col('vt_label', { hostile: true }), col('status')],
    rows: files.slice(0, limit).map((f) => ({
      sha256: f.sha256, url: f.url, filename: f.filename, sessions: f.sessions, ips: f.ips, vt_malicious: f.malicious, vt_total: f.total, vt_label: f.label, status: f.status,
    })),
  };
}

export function newTable(o: {
  ips: IpRow[]; asns: Array<{ asn: number; firstSeen: string }>; asnInfo: Map<number, AsnInfo>; passwords: NewValue[]; commands: NewValue[]; files: FileRow[]; w: ReportWindow; limit: number;
}): ViewTable {
  const { w, limit } = o;
  const byFirst = <T>(list: T[], first: (t: T) => string | null) => list.slice().sort((a, b) => String(first(a)).localeCompare(String(first(b))));
  const newIps = byFirst(o.ips.filter((ip) => isNewIp(ip, w)), (ip) => ip.everFirstSeen ?? ip.firstSeen);
  const newFiles = byFirst(o.files.filter((f) => f.everFirstSeen !== null && f.everFirstSeen >= w.since), (f) => f.everFirstSeen);
  const rows: Row[] = [
    ...newIps.slice(0, limit).map((ip) => ({ kind: 'ip', value: ip.ip, first_seen: ip.everFirstSeen ?? ip.firstSeen, detail: ip.asn === null ? null : `AS${ip.asn}` })),
    ...o.asns.slice(0, limit).map((a) => ({ kind: 'asn', value: `AS${a.asn}`, first_seen: a.firstSeen, detail: o.asnInfo.get(a.asn)?.name ?? null })),
    ...o.passwords.slice(0, limit).map((p) => ({ kind: 'password', value: p.value, first_seen: p.firstSeen, detail: null })),
    ...o.commands.slice(0, limit).map((c) => ({ kind: 'command', value: c.value, first_seen: c.firstSeen, detail: null })),
    ...newFiles.slice(0, limit).map((f) => ({ kind: 'file', value: f.sha256, first_seen: f.everFirstSeen, detail: f.filename })),
  ];
  return { view: 'new', title: 'New in this window', columns: [col('kind'), col('value', { hostile: true }), col('first_seen'), col('detail', { hostile: true })], rows };
}

const QUIET_MS = 2 * 86_400_000;

export function coverageTable(cov: IpCoverage, files: FileRow[], now: Date): ViewTable {
  const rows: Row[] = [];
  const buildText = cov.cityBuild || cov.asnBuild ? `City ${cov.cityBuild ?? 'none'}, ASN ${cov.asnBuild ?? 'none'}` : null;
  for (const source of ['maxmind', 'cymru', 'greynoise'] as const) {
    const s = cov.sources[source];
    rows.push(sourceRow(source, cov.items, s.answered, s.oldest, s.newest, s.pending, null, cov.unenriched + s.pending, source === 'maxmind' ? buildText : null, now));
  }
  const answered = files.filter((f) => f.status === 'enriched' || f.status === 'unknown');
  const vtPending = files.filter((f) => f.status === 'pending').length;
  const vtFailed = files.filter((f) => f.status === 'failed').length;
  const vtTimes = answered.map((f) => f.updatedAt).filter((t): t is string => t !== null).sort();
  rows.push(sourceRow('virustotal', files.length, vtTimes.length, vtTimes[0] ?? null, vtTimes.at(-1) ?? null, vtPending, vtFailed, vtPending + vtFailed, null, now));
  return {
    view: 'coverage', title: 'Enrichment coverage',
    columns: [col('source'), n('items'), n('answered'), n('answered_share'), n('pending'), n('failed'), col('oldest_answer'), col('newest_answer'), col('quiet'), col('database_build')],
    rows,
  };
}

function sourceRow(
  source: string, items: number, answered: number, oldest: string | null, newest: string | null, pending: number, failed: number | null, waiting: number, build: string | null, now: Date,
): Row {
  // Gone quiet: something waits for this source and it has answered nothing for 2 days.
  const quiet = waiting > 0 && (newest === null || now.getTime() - Date.parse(newest) > QUIET_MS);
  return {
    source, items, answered, answered_share: share(answered, items), pending, failed,
    oldest_answer: oldest, newest_answer: newest, quiet, database_build: build,
  };
}

export type { DailyRow };
