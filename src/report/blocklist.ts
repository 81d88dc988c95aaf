/**
 * Feeds for firewalls and threat-intel platforms: which IPs (and file hashes) to export, and the
 * line-oriented formats (plain, nftables set, ipset restore file). STIX and MISP are in feeds.ts.
 */
import { isIPv4 } from 'node:net';
import { UsageError } from '../errors.js';
import { isPublicIp } from '../enrich/ip-scope.js';
import type { AsnInfo, FileRow, IpStat } from './data.js';
import { classificationOf } from './views.js';
import type { Row } from './views.js';

export interface BlocklistOptions {
  minSessions?: number;
  minSensors?: number;
  /** Keep (default) or drop what GreyNoise calls internet-wide noise. */
  scanners: 'include' | 'exclude';
  /** Only IPs active within this long before the window's end (ms). */
  maxAgeMs: number;
}

export const DEFAULT_MAX_AGE = '30d';

export interface BlockEntry {
  ip: string;
  sessions: number;
  sensors: number;
  firstSeen: string;
  lastSeen: string;
  classification: string;
  noise: boolean;
  asn: number | null;
  asName: string | null;
  country: string | null;
}

/**
 * Every public IP seen in the window except those GreyNoise calls benign or RIOT (common business
 * services: blocking them breaks mail, CDNs and updates). Never private, loopback or reserved.
 */
export function selectBlocklist(ips: IpStat[], asns: Map<number, AsnInfo>, until: string, o: BlocklistOptions): BlockEntry[] {
  const oldest = Date.parse(until) - o.maxAgeMs;
  return ips
    .filter((ip) => isPublicIp(ip.ip) && !ip.gnRiot && ip.gnClassification !== 'benign'
      && ip.sessions >= (o.minSessions ?? 0) && ip.sensors >= (o.minSensors ?? 0)
      && !(o.scanners === 'exclude' && ip.gnNoise) && Date.parse(ip.lastSeen) >= oldest)
    .sort((a, b) => compareIps(a.ip, b.ip))
    .map((ip) => ({
      ip: ip.ip, sessions: ip.sessions, sensors: ip.sensors, firstSeen: ip.firstSeen, lastSeen: ip.lastSeen, classification: classificationOf(ip),
      noise: ip.gnNoise, asn: ip.asn, asName: ip.asn === null ? null : asns.get(ip.asn)?.name ?? null, country: ip.country,
    }));
}

/** IPv4 before IPv6, then text order (stable output that diffs well). */
function compareIps(a: string, b: string): number {
  const va = isIPv4(a) ? 0 : 1;
  const vb = isIPv4(b) ? 0 : 1;
  return va - vb || a.localeCompare(b, 'en', { numeric: true });
}

/** The reasons behind each entry (csv/json). */
export const blocklistRow = (e: BlockEntry): Row => ({
  ip: e.ip, sessions: e.sessions, sensors: e.sensors, first_seen: e.firstSeen, last_seen: e.lastSeen, classification: e.classification,
  asn: e.asn, as_name: e.asName, country: e.country,
});

export const BLOCKLIST_COLUMNS = [
  { key: 'ip' }, { key: 'sessions', numeric: true }, { key: 'sensors', numeric: true }, { key: 'first_seen' }, { key: 'last_seen' },
  { key: 'classification', hostile: true }, { key: 'asn', numeric: true }, { key: 'as_name', hostile: true }, { key: 'country', hostile: true },
];

export function renderPlain(entries: BlockEntry[]): string {
  return entries.map((e) => `${e.ip}\n`).join('');
}

const SET_NAME = /^[A-Za-z][A-Za-z0-9_]{0,27}$/;

export function checkSetName(name: string): string {
  if (!SET_NAME.test(name)) throw new UsageError(`--set-name ${JSON.stringify(name.slice(0, 40))}: letters, digits and _ only, starting with a letter, at most 28 characters`);
  return name;
}

/** An nftables table with one set per address family (`nft -f FILE`); an empty set has no elements line. */
export function renderNft(entries: BlockEntry[], setName: string, header: string): string {
  const v4 = entries.filter((e) => isIPv4(e.ip)).map((e) => e.ip);
  const v6 = entries.filter((e) => !isIPv4(e.ip)).map((e) => e.ip);
  const set = (name: string, type: string, list: string[]) => [
    `\tset ${name} {`, `\t\ttype ${type}`, ...(list.length ? [`\t\telements = {\n${list.map((ip) => `\t\t\t${ip}`).join(',\n')}\n\t\t}`] : []), '\t}',
  ];
  return [`# ${header}`, `table inet cowrie_report {`, ...set(`${setName}_v4`, 'ipv4_addr', v4), ...set(`${setName}_v6`, 'ipv6_addr', v6), '}', ''].join('\n');
}

/** An `ipset restore` file: one hash:ip set per family, re-runnable (`-exist`). */
export function renderIpset(entries: BlockEntry[], setName: string, header: string): string {
  const lines = [`# ${header}`, `create ${setName}_v4 hash:ip family inet -exist`, `create ${setName}_v6 hash:ip family inet6 -exist`];
  for (const e of entries) lines.push(`add ${setName}_${isIPv4(e.ip) ? 'v4' : 'v6'} ${e.ip} -exist`);
  return `${lines.join('\n')}\n`;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** Hashes worth a feed: VirusTotal flags them, or has never seen them. */
export function selectFileFeed(files: FileRow[]): FileRow[] {
  return files.filter((f) => SHA256.test(f.sha256) && ((f.malicious ?? 0) > 0 || f.status === 'unknown'));
}
