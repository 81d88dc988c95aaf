/**
 * The report benchmark's database: N sessions over 7 days written directly as summary rows (not
 * through the loader, to save time), with IPs, enrichment, credentials, commands, files and the
 * report rollups.
 */
import { backfillReportRollups, credentialHash, valueHash } from '../../src/store/report-facts-repo.js';
import type { Store } from '../../src/store/store.js';

export const DAYS = 7;
const SENSORS = ['honeypot-01', 'honeypot-02', 'dshield-01'];
const CLASSES = ['malicious', 'benign', 'unknown', null, 'malicious', 'unknown'];
const USERS = Array.from({ length: 200 }, (_, i) => (i < 5 ? ['root', 'admin', 'ubnt', 'pi', 'user'][i] : `user${i}`));
const PASSWORDS = Array.from({ length: 2000 }, (_, i) => `pass${i}`);
const COMMANDS = Array.from({ length: 300 }, (_, i) => `uname -a; cat /proc/cpuinfo # variant ${i}`);

/** Small seeded PRNG (mulberry32): the same database every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 23)}000Z`;

async function insert(store: Store, table: string, columns: Array<[string, string]>, rows: unknown[][], conflict = ''): Promise<void> {
  for (let k = 0; k < rows.length; k += 20_000) {
    const chunk = rows.slice(k, k + 20_000);
    await store.db.transaction((tx) => store.db.insertMany(tx, { table, columns, conflict }, chunk));
  }
}

/** N sessions over 7 days, N/10 IPs (Zipf-ish), ~1.6 logins and ~0.6 commands per session, 2% with a download. */
export async function populate(store: Store, N: number): Promise<{ rows: Record<string, number> }> {
  const r = rng(42);
  const start = Date.parse('2024-03-01T00:00:00Z');
  const ipCount = Math.max(10, Math.floor(N / 10));
  const ips = Array.from({ length: ipCount }, (_, i) => `${11 + (i % 200)}.${(i >> 8) & 255}.${(i >> 3) & 255}.${(i % 250) + 1}`);
  const pickIp = () => ips[Math.floor(ipCount * r() ** 2)];
  const sessions: unknown[][] = [];
  const creds: unknown[][] = [];
  const cmds: unknown[][] = [];
  const files: unknown[][] = [];
  const seen = new Map<string, [string, string, string, string, string]>();
  const ipSeen = new Map<string, { first: string; last: string; sensors: Set<string>; n: number }>();
  for (let i = 0; i < N; i++) {
    const id = `s${i.toString(36).padStart(8, '0')}`;
    const t0 = start + Math.floor(r() * DAYS * 86_400_000);
    const first = iso(t0);
    const last = iso(t0 + 5000);
    const sensor = SENSORS[Math.floor(SENSORS.length * r() ** 1.5)];
    const ip = pickIp();
    const logins = Math.floor(r() * 4);
    let success = false;
    // One row per distinct credential (or command) in a session, as ingest writes them.
    const sessionCreds = new Map<string, unknown[]>();
    for (let k = 0; k < logins; k++) {
      const u = USERS[Math.floor(USERS.length * r() ** 3)];
      const p = PASSWORDS[Math.floor(PASSWORDS.length * r() ** 3)];
      const ok = r() < 0.1;
      success ||= ok;
      const h = credentialHash(u, p);
      const row = sessionCreds.get(h);
      if (row) { (row[4] as number)++; (row[5] as number) += ok ? 1 : 0; } else sessionCreds.set(h, [id, h, u, p, 1, ok ? 1 : 0]);
      const key = `p${p}${sensor}`;
      if (!seen.has(key) || seen.get(key)![4] > first) seen.set(key, ['password', valueHash(p), sensor, p, first]);
    }
    creds.push(...sessionCreds.values());
    const commands = success ? 1 + Math.floor(r() * 5) : 0;
    const sessionCmds = new Map<string, unknown[]>();
    for (let k = 0; k < commands; k++) {
      const c = COMMANDS[Math.floor(COMMANDS.length * r() ** 2)];
      const h = valueHash(c);
      const row = sessionCmds.get(h);
      if (row) (row[3] as number)++; else sessionCmds.set(h, [id, h, c, 1]);
      const key = `c${c}${sensor}`;
      if (!seen.has(key) || seen.get(key)![4] > first) seen.set(key, ['command', valueHash(c), sensor, c, first]);
    }
    cmds.push(...sessionCmds.values());
    const download = success && r() < 0.2;
    if (download) files.push([`${Math.floor(r() * 5000).toString(16).padStart(64, '0')}`, id, 'http://203.0.113.9/x', 'x', first, first, 'pending']);
    sessions.push([id, sensor, ip, first, last, 5, 3 + logins + commands, logins, success, commands, download ? 1 : 0]);
    const s = ipSeen.get(ip);
    if (!s) ipSeen.set(ip, { first, last, sensors: new Set([sensor]), n: 1 });
    else {
      if (first < s.first) s.first = first;
      if (last > s.last) s.last = last;
      s.sensors.add(sensor);
      s.n++;
    }
  }
  await insert(store, 'session_summaries', [['session_id', 'text'], ['sensor', 'text'], ['source_ip', 'text'], ['first_event_at', 'timestamptz'], ['last_event_at', 'timestamptz'],
    ['duration_seconds', 'double precision'], ['event_count', 'integer'], ['login_attempts', 'integer'], ['login_success', 'boolean'], ['command_count', 'integer'], ['file_downloads', 'integer']], sessions);
  await insert(store, 'session_credentials', [['session_id', 'text'], ['credential_hash', 'text'], ['username', 'text'], ['password', 'text'], ['attempts', 'integer'], ['successes', 'integer']], creds);
  await insert(store, 'session_commands', [['session_id', 'text'], ['command_hash', 'text'], ['command', 'text'], ['executions', 'integer']], cmds);
  await insert(store, 'first_seen_values', [['kind', 'text'], ['value_hash', 'text'], ['sensor', 'text'], ['value', 'text'], ['first_seen', 'timestamptz']], [...seen.values()]);
  await insert(store, 'files', [['shasum', 'text'], ['session_id', 'text'], ['url', 'text'], ['filename', 'text'], ['first_seen', 'timestamptz'], ['last_seen', 'timestamptz'], ['enrichment_status', 'text']], files);
  const enrichedAt = iso(start + DAYS * 86_400_000);
  const ipRows = [...ipSeen].map(([ip, s], i) => {
    const asn = 64512 + (i % 2000);
    const cls = CLASSES[i % CLASSES.length];
    const enrichment = { maxmind: { asn, country_code: 'NL', fetched_at: enrichedAt, city_db_build: '2024-03-01', asn_db_build: '2024-03-01' }, greynoise: { observed: cls !== null, noise: i % 3 === 0, riot: false, classification: cls, name: null, fetched_at: enrichedAt } };
    return [ip, s.first, s.last, s.n, JSON.stringify([...s.sensors].sort()), asn, ['NL', 'US', 'CN', 'BR', 'RU'][i % 5], JSON.stringify(enrichment), enrichedAt];
  });
  await insert(store, 'ip_inventory', [['ip_address', 'text'], ['first_seen', 'timestamptz'], ['last_seen', 'timestamptz'], ['session_count', 'integer'], ['sensors', 'jsonb'],
    ['current_asn', 'bigint'], ['geo_country', 'text'], ['enrichment', 'jsonb'], ['enrichment_updated_at', 'timestamptz']], ipRows);
  await insert(store, 'asn_inventory', [['asn_number', 'bigint'], ['organization_name', 'text'], ['organization_country', 'text']],
    Array.from({ length: 2000 }, (_, i) => [64512 + i, `AS${64512 + i}-EXAMPLE, NL`, 'NL']));
  // The day rollups the loader keeps, built the way migration 4 builds them for an existing database.
  await store.db.transaction((tx) => backfillReportRollups(store.db, tx));
  await store.db.run('ANALYZE');
  return { rows: { sessions: sessions.length, credentials: creds.length, commands: cmds.length, first_seen: seen.size, files: files.length, ips: ipRows.length } };
}

