/**
 * A generated database with known answers for the report tests: simulated Cowrie logs plus one
 * hand-written file of hostile sessions, loaded by the real loader; enrichment written as rows
 * with values the test chooses (so expectations are computed here, independently of the report SQL).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ingest } from '../../src/ingest/ingest.js';
import { silentLogger } from '../../src/log.js';
import { generateLogs } from '../../src/sim/log-generator.js';
import { openStore, type Store } from '../../src/store/store.js';
import { isoMicros } from '../../src/store/time.js';
import { tempDir } from '../helpers/dialects.js';

export const HOSTILE = {
  username: '<script>alert("u")</script>',
  password: '=HYPERLINK("http://x.invalid","p")',
  command: '\x1b[31mred\x1b]0;owned\x07 && @SUM(1+1)',
  asName: '<img src=x onerror=alert(1)>, ZZ',
  sensor: 'honeypot-01',
  ip: '203.0.114.5',
  privateIp: '10.1.2.3',
  hash: 'a'.repeat(64),
  url: '+http://198.51.99.9/<b>x</b>',
};
export const HOSTILE_ASN = 64999;

export interface Ev {
  eventid: string;
  session: string;
  src_ip: string;
  sensor: string;
  timestamp: string;
  username?: string;
  password?: string;
  input?: string;
  shasum?: string;
  url?: string;
}

export interface IpFacts { asn: number; country: string; classification: string | null; riot: boolean; noise: boolean; observed: boolean }

export interface Fixture {
  dir: string;
  logPaths: string[];
  events: Ev[];
  ipFacts: Map<string, IpFacts>;
  asnNames: Map<number, string>;
  /** VirusTotal state chosen per SHA-256. */
  vt: Map<string, { status: 'enriched' | 'unknown' | 'pending'; malicious: number | null }>;
}

const COUNTRIES = ['US', 'CN', 'NL', 'BR', 'RU', 'DE'];
const CLASSES: Array<string | null> = ['malicious', 'benign', 'unknown', null, 'malicious'];

function hostileLines(): string[] {
  const t = (s: number) => `2024-01-02T12:00:${String(s).padStart(2, '0')}.000000Z`;
  const base = { sensor: HOSTILE.sensor, src_ip: HOSTILE.ip, session: 'hostile01' };
  const priv = { sensor: HOSTILE.sensor, src_ip: HOSTILE.privateIp, session: 'private01' };
  return [
    { ...base, eventid: 'cowrie.session.connect', timestamp: t(1), dst_ip: '192.168.1.1', dst_port: 22, src_port: 4444, protocol: 'ssh' },
    { ...base, eventid: 'cowrie.login.failed', timestamp: t(2), username: HOSTILE.username, password: HOSTILE.password },
    { ...base, eventid: 'cowrie.login.success', timestamp: t(3), username: HOSTILE.username, password: HOSTILE.password },
    { ...base, eventid: 'cowrie.command.input', timestamp: t(4), input: HOSTILE.command },
    { ...base, eventid: 'cowrie.session.file_download', timestamp: t(5), shasum: HOSTILE.hash, url: HOSTILE.url, outfile: 'var/lib/cowrie/downloads/x' },
    { ...base, eventid: 'cowrie.session.closed', timestamp: t(6), duration: 5 },
    { ...priv, eventid: 'cowrie.session.connect', timestamp: t(7), dst_ip: '192.168.1.1', dst_port: 22, src_port: 4445, protocol: 'ssh' },
    { ...priv, eventid: 'cowrie.login.failed', timestamp: t(8), username: 'root', password: 'root' },
  ].map((e) => JSON.stringify(e));
}

/** Deterministic per-IP facts (a small hash of the address). */
function factsFor(ip: string, i: number): IpFacts {
  let h = 0;
  for (const ch of ip) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  const classification = CLASSES[h % CLASSES.length];
  return {
    asn: 64500 + (h % 7), country: COUNTRIES[(h >>> 3) % COUNTRIES.length], classification,
    riot: classification === 'benign' && i % 2 === 0, noise: classification === 'malicious' && h % 3 === 0, observed: classification !== null || h % 2 === 0,
  };
}

export async function buildFixture(url: string, o: { sessions?: number } = {}): Promise<Fixture> {
  const dir = tempDir('cowrie-report-');
  const logs = path.join(dir, 'logs');
  const gen = await generateLogs({ outDir: logs, sessions: o.sessions ?? 300, ips: 90, sensors: 2, days: 3, seed: 11 });
  const hostileFile = path.join(logs, 'hostile.json');
  fs.writeFileSync(hostileFile, `${hostileLines().join('\n')}\n`);
  const logPaths = [...gen.paths, hostileFile];
  const events: Ev[] = [];
  for (const p of logPaths) {
    for (const line of fs.readFileSync(p, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const e = JSON.parse(line) as Ev;
      // Some sensors log with a UTC offset: the store keeps every time in UTC.
      events.push({ ...e, timestamp: isoMicros(e.timestamp) });
    }
  }
  const store = await openStore(url);
  try {
    await ingest(store, { paths: [logs], mode: 'bulk', logger: silentLogger });
    const ipFacts = new Map<string, IpFacts>();
    const asnNames = new Map<number, string>();
    const ips = [...new Set(events.map((e) => e.src_ip))].sort();
    ips.forEach((ip, i) => ipFacts.set(ip, ip === HOSTILE.ip ? { asn: HOSTILE_ASN, country: 'ZZ', classification: 'malicious', riot: false, noise: false, observed: true } : factsFor(ip, i)));
    for (const f of ipFacts.values()) asnNames.set(f.asn, f.asn === HOSTILE_ASN ? HOSTILE.asName : `AS${f.asn}-EXAMPLE, ${f.country}`);
    await writeEnrichment(store, ipFacts, asnNames);
    const vt = new Map<string, { status: 'enriched' | 'unknown' | 'pending'; malicious: number | null }>();
    const shas = [...new Set(events.filter((e) => e.eventid === 'cowrie.session.file_download' && e.shasum).map((e) => e.shasum!))].sort();
    shas.forEach((sha, i) => vt.set(sha, sha === HOSTILE.hash ? { status: 'unknown', malicious: null } : i % 3 === 0 ? { status: 'enriched', malicious: 5 + i } : i % 3 === 1 ? { status: 'unknown', malicious: null } : { status: 'pending', malicious: null }));
    for (const [sha, v] of vt) {
      await store.db.run(
        'UPDATE files SET enrichment_status = ?, vt_malicious = ?, vt_suspicious = ?, vt_harmless = ?, vt_undetected = ?, vt_label = ?, enrichment_updated_at = ? WHERE shasum = ?',
        v.status === 'enriched' ? [v.status, v.malicious, 1, 2, 60, 'trojan.mirai', '2024-01-04T00:00:00.000000Z', sha] : [v.status, null, null, null, null, null, v.status === 'pending' ? null : '2024-01-04T00:00:00.000000Z', sha],
      );
    }
    return { dir, logPaths, events, ipFacts, asnNames, vt };
  } finally {
    await store.close();
  }
}

async function writeEnrichment(store: Store, ipFacts: Map<string, IpFacts>, asnNames: Map<number, string>): Promise<void> {
  const at = '2024-01-04T00:00:00.000000Z';
  for (const [ip, f] of ipFacts) {
    const enrichment = {
      maxmind: { asn: f.asn, country_code: f.country, fetched_at: at, city_db_build: '2024-01-01', asn_db_build: '2024-01-01' },
      ...(f.observed ? { greynoise: { observed: f.classification !== null, noise: f.noise, riot: f.riot, classification: f.classification, name: f.classification ? `gn-${f.classification}` : null, fetched_at: at } } : {}),
    };
    await store.db.run(
      `UPDATE ip_inventory SET current_asn = ?, geo_country = ?, enrichment = ${store.db.jsonParam()}, enrichment_updated_at = ? WHERE ip_address = ?`,
      [f.asn, f.country, JSON.stringify(enrichment), at, ip],
    );
  }
  for (const [asn, name] of asnNames) {
    await store.db.run('INSERT INTO asn_inventory (asn_number, organization_name, organization_country) VALUES (?, ?, ?)', [asn, name, name.slice(-2)]);
  }
}

/** Sessions as the report defines them: first event, source IP, sensor and what happened. */
export interface SessionFacts { id: string; first: string; ip: string; sensor: string; events: number; logins: number; successes: number; commands: number; downloads: Set<string> }

export function sessionsOf(events: Ev[]): Map<string, SessionFacts> {
  const out = new Map<string, SessionFacts>();
  for (const e of events) {
    let s = out.get(e.session);
    if (!s) out.set(e.session, (s = { id: e.session, first: e.timestamp, ip: e.src_ip, sensor: e.sensor, events: 0, logins: 0, successes: 0, commands: 0, downloads: new Set() }));
    s.events++;
    if (e.timestamp < s.first) s.first = e.timestamp;
    if (e.eventid === 'cowrie.login.success' || e.eventid === 'cowrie.login.failed') s.logins++;
    if (e.eventid === 'cowrie.login.success') s.successes++;
    if (e.eventid === 'cowrie.command.input') s.commands++;
    if (e.eventid === 'cowrie.session.file_download' && e.shasum) s.downloads.add(e.shasum);
  }
  return out;
}

/** Count by key, sorted by count descending. */
export function tally<T>(items: T[], key: (t: T) => string, weight: (t: T) => number = () => 1): Array<[string, number]> {
  const m = new Map<string, number>();
  for (const it of items) m.set(key(it), (m.get(key(it)) ?? 0) + weight(it));
  return [...m.entries()].sort((a, b) => b[1] - a[1]);
}
