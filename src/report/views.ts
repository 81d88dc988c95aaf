/**
 * The report's views as tables: each a list of columns (snake_case keys, the JSON field names)
 * and rows. Every format (table, CSV, JSON, HTML) renders these same rows, so they agree.
 */
import { isPublicIp } from '../enrich/ip-scope.js';
import type { AsnInfo, CommandRow, CredentialRow, DailyRow, FileRow, IpStat, NewValue, Totals } from './data.js';
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
export function classificationOf(ip: IpStat): string {
  if (ip.gnClassification) return ip.gnClassification;
  return ip.greynoiseAt ? 'not_observed' : 'unenriched';
}

/** New in the window: never seen anywhere before it. */
export const isNewIp = (ip: IpStat, w: ReportWindow) => ip.everFirstSeen === null || ip.everFirstSeen >= w.since;

export function totalsTable(current: Totals, previous: Totals): ViewTable {
  const rows = (Object.keys(current) as Array<keyof Totals>).map((k) => ({ metric: k, current: current[k], previous: previous[k], change: current[k] - previous[k] }));
  return { view: 'totals', title: 'Totals', columns: [col('metric'), n('current'), n('previous'), n('change')], rows };
}

export function totalsJson(current: Totals, previous: Totals): { current: Totals; previous: Totals; change: Totals } {
  const change = {} as Totals;
  for (const k of Object.keys(current) as Array<keyof Totals>) change[k] = current[k] - previous[k];
  return { current, previous, change };
}

function mix(ips: IpStat[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const ip of ips) {
    const c = classificationOf(ip);
    m[c] = (m[c] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(m).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

export function asnsTable(ips: IpStat[], asns: Map<number, AsnInfo>, totalSessions: number, limit: number): ViewTable {
  const by = new Map<number | null, IpStat[]>();
  for (const ip of ips) {
    const list = by.get(ip.asn);
    if (list) list.push(ip);
    else by.set(ip.asn, [ip]);
  }
  const rows: Row[] = [...by.entries()].map(([asn, list]) => {
    const sessions = list.reduce((a, ip) => a + ip.sessions, 0);
    const info = asn === null ? undefined : asns.get(asn);
    return { asn, name: info?.name ?? null, country: info?.country ?? null, ips: list.length, sessions, share: share(sessions, totalSessions), classification: mix(list) };
  });
  rows.sort((a, b) => (b.sessions as number) - (a.sessions as number) || (a.asn === null ? 1 : b.asn === null ? -1 : (a.asn as number) - (b.asn as number)));
  return {
    view: 'asns', title: 'Top ASNs',
    columns: [n('asn'), col('name', { hostile: true }), col('country', { hostile: true }), n('ips'), n('sessions'), n('share'), col('classification')],
    rows: rows.slice(0, limit),
  };
}

export function countriesTable(ips: IpStat[], totalSessions: number, limit: number): ViewTable {
  const by = new Map<string | null, { ips: number; sessions: number }>();
  for (const ip of ips) {
    const c = by.get(ip.country) ?? { ips: 0, sessions: 0 };
    c.ips++;
    c.sessions += ip.sessions;
    by.set(ip.country, c);
  }
  const rows: Row[] = [...by.entries()]
    .map(([country, c]) => ({ country, ips: c.ips, sessions: c.sessions, share: share(c.sessions, totalSessions) }))
    .sort((a, b) => b.sessions - a.sessions || String(a.country ?? '~').localeCompare(String(b.country ?? '~')));
  return { view: 'countries', title: 'Countries', columns: [col('country', { hostile: true }), n('ips'), n('sessions'), n('share')], rows: rows.slice(0, limit) };
}

export interface IpFilter { classification?: string; newOnly?: boolean; minSessions?: number }

export function ipsTable(ips: IpStat[], w: ReportWindow, f: IpFilter, limit: number, now: Date): ViewTable {
  const ageDays = (at: string | null) => (at === null ? null : Math.round(((now.getTime() - Date.parse(at)) / 86_400_000) * 10) / 10);
  const rows = ips
    .filter((ip) => (f.classification === undefined || classificationOf(ip) === f.classification)
      && (!f.newOnly || isNewIp(ip, w)) && ip.sessions >= (f.minSessions ?? 0))
    .sort((a, b) => b.sessions - a.sessions || a.ip.localeCompare(b.ip))
    .slice(0, limit)
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

export function newTable(o: { ips: IpStat[]; asns: Map<number, AsnInfo>; passwords: NewValue[]; commands: NewValue[]; files: FileRow[]; w: ReportWindow; limit: number }): ViewTable {
  const { w, limit } = o;
  const byFirst = <T>(list: T[], first: (t: T) => string | null) => list.slice().sort((a, b) => String(first(a)).localeCompare(String(first(b))));
  const newIps = byFirst(o.ips.filter((ip) => isNewIp(ip, w)), (ip) => ip.everFirstSeen ?? ip.firstSeen);
  const asnSeen = new Set<number>();
  const newAsns: Array<{ asn: number; info: AsnInfo }> = [];
  for (const ip of o.ips) {
    if (ip.asn === null || asnSeen.has(ip.asn)) continue;
    asnSeen.add(ip.asn);
    const info = o.asns.get(ip.asn);
    if (info?.firstSeen && info.firstSeen >= w.since) newAsns.push({ asn: ip.asn, info });
  }
  const newFiles = byFirst(o.files.filter((f) => f.everFirstSeen !== null && f.everFirstSeen >= w.since), (f) => f.everFirstSeen);
  const rows: Row[] = [
    ...newIps.slice(0, limit).map((ip) => ({ kind: 'ip', value: ip.ip, first_seen: ip.everFirstSeen ?? ip.firstSeen, detail: ip.asn === null ? null : `AS${ip.asn}` })),
    ...byFirst(newAsns, (a) => a.info.firstSeen).slice(0, limit).map((a) => ({ kind: 'asn', value: `AS${a.asn}`, first_seen: a.info.firstSeen, detail: a.info.name })),
    ...o.passwords.slice(0, limit).map((p) => ({ kind: 'password', value: p.value, first_seen: p.firstSeen, detail: null })),
    ...o.commands.slice(0, limit).map((c) => ({ kind: 'command', value: c.value, first_seen: c.firstSeen, detail: null })),
    ...newFiles.slice(0, limit).map((f) => ({ kind: 'file', value: f.sha256, first_seen: f.everFirstSeen, detail: f.filename })),
  ];
  return { view: 'new', title: 'New in this window', columns: [col('kind'), col('value', { hostile: true }), col('first_seen'), col('detail', { hostile: true })], rows };
}

const QUIET_MS = 2 * 86_400_000;

export function coverageTable(ips: IpStat[], files: FileRow[], now: Date): ViewTable {
  const publicIps = ips.filter((ip) => isPublicIp(ip.ip));
  const unenriched = publicIps.filter((ip) => ip.enrichedAt === null).length;
  const rows: Row[] = [];
  const ipSource = (source: string, at: (ip: IpStat) => string | null, build: string | null) => {
    const times = publicIps.map(at).filter((t): t is string => t !== null).sort();
    const pending = publicIps.filter((ip) => ip.pending.includes(source)).length;
    rows.push(sourceRow(source, publicIps.length, times, pending, null, unenriched + pending, build, now));
  };
  const max = (v: Array<string | null>) => v.filter((x): x is string => x !== null).sort().at(-1) ?? null;
  const builds = [max(publicIps.map((ip) => ip.cityBuild)), max(publicIps.map((ip) => ip.asnBuild))];
  const buildText = builds[0] || builds[1] ? `City ${builds[0] ?? 'none'}, ASN ${builds[1] ?? 'none'}` : null;
  ipSource('maxmind', (ip) => ip.maxmindAt, buildText);
  ipSource('cymru', (ip) => ip.cymruAt, null);
  ipSource('greynoise', (ip) => ip.greynoiseAt, null);
  const answered = files.filter((f) => f.status === 'enriched' || f.status === 'unknown');
  const vtPending = files.filter((f) => f.status === 'pending').length;
  const vtFailed = files.filter((f) => f.status === 'failed').length;
  const vtTimes = answered.map((f) => f.updatedAt).filter((t): t is string => t !== null).sort();
  rows.push(sourceRow('virustotal', files.length, vtTimes, vtPending, vtFailed, vtPending + vtFailed, null, now));
  return {
    view: 'coverage', title: 'Enrichment coverage',
    columns: [col('source'), n('items'), n('answered'), n('answered_share'), n('pending'), n('failed'), col('oldest_answer'), col('newest_answer'), col('quiet'), col('database_build')],
    rows,
  };
}

function sourceRow(source: string, items: number, times: string[], pending: number, failed: number | null, waiting: number, build: string | null, now: Date): Row {
  const newest = times.at(-1) ?? null;
  // Gone quiet: something waits for this source and it has answered nothing for 2 days.
  const quiet = waiting > 0 && (newest === null || now.getTime() - Date.parse(newest) > QUIET_MS);
  return {
    source, items, answered: times.length, answered_share: share(times.length, items), pending, failed,
    oldest_answer: times[0] ?? null, newest_answer: newest, quiet, database_build: build,
  };
}

export type { DailyRow };
