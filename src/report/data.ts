/**
 * What a report reads: summary tables and report facts only (never raw_events). Grouping that
 * needs the enrichment JSON happens once per IP (not per session), then in code.
 */
import type { SqlRunner } from '../store/store.js';
import { sessionFilter, type ReportWindow } from './window.js';

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

/**
 * Totals of a window. A summary has already grouped the window by IP and by credential, so it
 * passes those in (distinct IPs and successful logins then cost no further pass over the window).
 */
export async function readTotals(db: SqlRunner, w: ReportWindow, known: { ips?: IpStat[]; credentials?: CredentialRow[] } = {}): Promise<Totals> {
  const f = sessionFilter(w);
  const distinctIps = known.ips ? '' : ', count(DISTINCT s.source_ip) AS source_ips';
  const [t] = await db.query<Record<string, unknown>>(
    `SELECT count(*) AS sessions, sum(s.event_count) AS events, count(DISTINCT coalesce(s.sensor, '')) AS sensors,
       sum(s.login_attempts) AS login_attempts, sum(s.command_count) AS commands${distinctIps}
     FROM session_summaries s WHERE ${f.sql}`, f.params,
  );
  let successes: number;
  if (known.credentials) successes = known.credentials.reduce((a, c) => a + c.successes, 0);
  else {
    const [c] = await db.query<Record<string, unknown>>(
      `SELECT sum(c.successes) AS successes FROM session_summaries s JOIN session_credentials c ON c.session_id = s.session_id WHERE ${f.sql}`, f.params,
    );
    successes = num(c.successes);
  }
  const [d] = await db.query<Record<string, unknown>>(
    `SELECT count(*) AS downloads FROM session_summaries s JOIN files f ON f.session_id = s.session_id WHERE ${f.sql}`, f.params,
  );
  return {
    events: num(t.events), sessions: num(t.sessions), source_ips: known.ips ? known.ips.length : num(t.source_ips), sensors: num(t.sensors),
    login_attempts: num(t.login_attempts), successful_logins: successes, commands: num(t.commands), downloads: num(d.downloads),
  };
}

export interface DailyRow { day: string; sensor: string; sessions: number; sessionsWithLogins: number; sessionsLoggedIn: number }

export async function readDaily(db: SqlRunner, w: ReportWindow): Promise<DailyRow[]> {
  const f = sessionFilter(w);
  // CAST … AS TEXT: ISO text on SQLite, `YYYY-MM-DD hh:…+00` on PostgreSQL (sessions run in UTC).
  const rows = await db.query<Record<string, unknown>>(
    `SELECT substr(CAST(s.first_event_at AS TEXT), 1, 10) AS day, coalesce(s.sensor, '') AS sensor_name, count(*) AS sessions,
       sum(CASE WHEN s.login_attempts > 0 THEN 1 ELSE 0 END) AS with_logins, sum(CASE WHEN s.login_success THEN 1 ELSE 0 END) AS logged_in
     FROM session_summaries s WHERE ${f.sql} GROUP BY 1, 2 ORDER BY 1, 2`, f.params,
  );
  return rows.map((r) => ({ day: String(r.day), sensor: String(r.sensor_name), sessions: num(r.sessions), sessionsWithLogins: num(r.with_logins), sessionsLoggedIn: num(r.logged_in) }));
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

export async function readIpStats(db: SqlRunner, w: ReportWindow): Promise<IpStat[]> {
  const f = sessionFilter(w);
  // Aggregate sessions first, then one inventory row per IP (the JSON is read once per IP).
  const rows = await db.query<Record<string, unknown>>(
    `SELECT a.ip, a.sessions, a.first_seen, a.last_seen, a.sensors, i.first_seen AS ever_first_seen, i.current_asn, i.geo_country,
       i.enrichment_updated_at, i.enrichment_pending,
       i.enrichment -> 'greynoise' ->> 'classification' AS gn_classification, i.enrichment -> 'greynoise' ->> 'name' AS gn_name,
       CAST(i.enrichment -> 'greynoise' ->> 'riot' AS TEXT) AS gn_riot, CAST(i.enrichment -> 'greynoise' ->> 'noise' AS TEXT) AS gn_noise,
       i.enrichment -> 'maxmind' ->> 'fetched_at' AS maxmind_at, i.enrichment -> 'cymru' ->> 'fetched_at' AS cymru_at,
       i.enrichment -> 'greynoise' ->> 'fetched_at' AS greynoise_at,
       i.enrichment -> 'maxmind' ->> 'city_db_build' AS city_build, i.enrichment -> 'maxmind' ->> 'asn_db_build' AS asn_build
     FROM (SELECT s.source_ip AS ip, count(*) AS sessions, min(s.first_event_at) AS first_seen, max(s.last_event_at) AS last_seen,
             count(DISTINCT coalesce(s.sensor, '')) AS sensors
           FROM session_summaries s WHERE ${f.sql} AND s.source_ip IS NOT NULL GROUP BY s.source_ip) a
     LEFT JOIN ip_inventory i ON i.ip_address = a.ip`, f.params,
  );
  return rows.map((r) => ({
    ip: String(r.ip), sessions: num(r.sessions), firstSeen: String(r.first_seen), lastSeen: String(r.last_seen), sensors: num(r.sensors),
    everFirstSeen: str(r.ever_first_seen), asn: r.current_asn === null || r.current_asn === undefined ? null : Number(r.current_asn),
    country: str(r.geo_country), enrichedAt: str(r.enrichment_updated_at),
    pending: r.enrichment_pending ? String(r.enrichment_pending).split(',').filter(Boolean) : [],
    gnClassification: str(r.gn_classification), gnName: str(r.gn_name), gnRiot: jsonTrue(r.gn_riot), gnNoise: jsonTrue(r.gn_noise),
    maxmindAt: str(r.maxmind_at), cymruAt: str(r.cymru_at), greynoiseAt: str(r.greynoise_at), cityBuild: str(r.city_build), asnBuild: str(r.asn_build),
  }));
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

export async function readCredentials(db: SqlRunner, w: ReportWindow, limit: number | null): Promise<CredentialRow[]> {
  const f = sessionFilter(w);
  const rows = await db.query<Record<string, unknown>>(
    `SELECT min(c.username) AS username, min(c.password) AS password, sum(c.attempts) AS attempts, sum(c.successes) AS successes,
       count(DISTINCT s.source_ip) AS ips
     FROM session_summaries s JOIN session_credentials c ON c.session_id = s.session_id WHERE ${f.sql}
     GROUP BY c.credential_hash ORDER BY attempts DESC, c.credential_hash${limit === null ? '' : ' LIMIT ?'}`,
    limit === null ? f.params : [...f.params, limit],
  );
  return rows.map((r) => ({ username: str(r.username), password: str(r.password), attempts: num(r.attempts), successes: num(r.successes), ips: num(r.ips) }));
}

export interface CommandRow { command: string | null; count: number; sessions: number; ips: number }

export async function readCommands(db: SqlRunner, w: ReportWindow, limit: number | null): Promise<CommandRow[]> {
  const f = sessionFilter(w);
  const rows = await db.query<Record<string, unknown>>(
    `SELECT min(c.command) AS command, sum(c.executions) AS executions, count(*) AS sessions, count(DISTINCT s.source_ip) AS ips
     FROM session_summaries s JOIN session_commands c ON c.session_id = s.session_id WHERE ${f.sql}
     GROUP BY c.command_hash ORDER BY executions DESC, c.command_hash${limit === null ? '' : ' LIMIT ?'}`,
    limit === null ? f.params : [...f.params, limit],
  );
  return rows.map((r) => ({ command: str(r.command), count: num(r.executions), sessions: num(r.sessions), ips: num(r.ips) }));
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
