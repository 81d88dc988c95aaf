import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readBool, readJson } from '../../src/store/schema.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { ev, load, snapshot, writeLines, freshStores } from './load-helpers.js';

const root = tempDir('cowrie-load-sum-');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = () => path.join(root, `c${n++}`);

const SHA = 'a'.repeat(64);
const SHA2 = 'b'.repeat(64);

/** One SSH session that starts before midnight (rotated file) and ends after it (live file). */
function splitSession(base: string): { before: string; after: string } {
  const s = 'aa11bb22cc33';
  const before = writeLines(path.join(base, 'cowrie.json.2024-01-01'), [
    ev('cowrie.session.connect', s, '2024-01-01T23:59:30.000001Z', { protocol: 'ssh' }),
    ev('cowrie.client.version', s, '2024-01-01T23:59:31.000002Z', { version: 'SSH-2.0-Go' }),
    ev('cowrie.client.kex', s, '2024-01-01T23:59:31.500000Z', { hassh: 'h1' }),
    ev('cowrie.login.failed', s, '2024-01-01T23:59:40.000000Z', { username: 'root', password: '1' }),
    ev('cowrie.login.failed', s, '2024-01-01T23:59:45.000000Z', { username: 'root', password: '2' }),
    ev('cowrie.login.success', s, '2024-01-01T23:59:50.000000Z', { username: 'root', password: '3' }),
    ev('cowrie.command.input', s, '2024-01-01T23:59:55.000000Z', { input: 'uname -a' }),
  ]);
  const after = writeLines(path.join(base, 'cowrie.json'), [
    ev('cowrie.command.input', s, '2024-01-02T00:00:05.000000Z', { input: 'wget http://x/y' }),
    ev('cowrie.session.file_download', s, '2024-01-02T00:00:07.000000Z', { url: 'http://x/y', shasum: SHA, outfile: `var/lib/cowrie/downloads/${SHA}` }),
    ev('cowrie.session.file_upload', s, '2024-01-02T00:00:08.000000Z', { filename: '/root/up.sh', shasum: SHA2 }),
    ev('cowrie.login.failed', s, '2024-01-02T00:00:09.000000Z', { username: 'x', password: 'y' }),
    ev('cowrie.session.closed', s, '2024-01-02T00:00:10.250000Z', { duration: 40.25 }),
    // An event type this tool has never heard of still counts as an event of the session.
    ev('cowrie.direct-tcpip.request', s, '2024-01-02T00:00:10.000000Z', { dst_ip: '8.8.8.8', dst_port: 53 }),
  ]);
  return { before, after };
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] summaries`, () => {
    const fresh = freshStores(d);

    it('a session split across a rotation boundary is one row with the right counts, whatever the order', async () => {
      const { before, after } = splitSession(dir());
      const results = [];
      for (const order of [[before, after], [after, before]]) {
        const s = await fresh();
        for (const f of order) await load(s, [f], { batchSize: 2 });
        const rows = await s.db.query<Record<string, unknown>>('SELECT * FROM session_summaries');
        expect(rows).toHaveLength(1);
        const r = rows[0];
        expect(r).toMatchObject({
          session_id: 'aa11bb22cc33', sensor: 'hp-a', source_ip: '203.0.113.7',
          first_event_at: '2024-01-01T23:59:30.000001Z', last_event_at: '2024-01-02T00:00:10.250000Z',
          event_count: 13, login_attempts: 4, command_count: 2, file_downloads: 1,
          client_version: 'SSH-2.0-Go', hassh: 'h1', protocol: 'ssh',
        });
        expect(Number(r.duration_seconds)).toBe(40.25);
        expect(readBool(r.login_success)).toBe(true);
        const files = await s.db.query<Record<string, unknown>>('SELECT session_id, shasum, url, filename, first_seen, last_seen FROM files ORDER BY shasum');
        expect(files).toEqual([
          { session_id: 'aa11bb22cc33', shasum: SHA, url: 'http://x/y', filename: 'y', first_seen: '2024-01-02T00:00:07.000000Z', last_seen: '2024-01-02T00:00:07.000000Z' },
          { session_id: 'aa11bb22cc33', shasum: SHA2, url: null, filename: 'up.sh', first_seen: '2024-01-02T00:00:08.000000Z', last_seen: '2024-01-02T00:00:08.000000Z' },
        ]);
        // Loading both again changes no count.
        await load(s, [before, after]);
        results.push(await snapshot(s));
      }
      expect(results[1]).toEqual(results[0]);
    });

    it('ip_inventory has every source IP with first/last seen, distinct sessions and sensors; IPv6 and mapped IPv4 are canonical', async () => {
      const base = dir();
      writeLines(path.join(base, 'hp-a', 'cowrie.json'), [
        ev('cowrie.session.connect', 's1', '2024-03-01T10:00:00.000000Z', { src_ip: '198.51.100.4' }),
        ev('cowrie.login.failed', 's1', '2024-03-01T10:00:01.000000Z', { src_ip: '198.51.100.4' }),
        ev('cowrie.session.connect', 's2', '2024-03-02T10:00:00.000000Z', { src_ip: '::ffff:198.51.100.4' }),
        ev('cowrie.session.connect', 's3', '2024-03-01T11:00:00.000000Z', { src_ip: '2001:DB8:0:0:0:0:0:1' }),
        ev('cowrie.session.closed', 's3', '2024-03-01T11:00:09+0100', { src_ip: '2001:db8::1', duration: 9 }),
      ]);
      writeLines(path.join(base, 'hp-b', 'cowrie.json'), [
        ev('cowrie.session.connect', 's4', '2024-02-28T09:00:00.000000Z', { src_ip: '198.51.100.4', sensor: 'hp-b' }),
        ev('cowrie.session.connect', 's5', '2024-03-05T09:00:00.000000Z', { src_ip: '198.51.100.4', sensor: '' }),
      ]);
      const s = await fresh();
      const r = await load(s, [base], { batchSize: 3 });
      expect(r.newIps).toBe(2);
      const rows = await s.db.query<Record<string, unknown>>('SELECT ip_address, first_seen, last_seen, session_count, sensors FROM ip_inventory ORDER BY ip_address');
      expect(rows.map((x) => ({ ...x, sensors: readJson(x.sensors) }))).toEqual([
        // 11:00:09+0100 is 10:00:09 UTC: earlier than the connect, so last_seen stays at the connect.
        { ip_address: '198.51.100.4', first_seen: '2024-02-28T09:00:00.000000Z', last_seen: '2024-03-05T09:00:00.000000Z', session_count: 4, sensors: ['hp-a', 'hp-b'] },
        { ip_address: '2001:db8::1', first_seen: '2024-03-01T10:00:09.000000Z', last_seen: '2024-03-01T11:00:00.000000Z', session_count: 1, sensors: ['hp-a'] },
      ]);
      const srcIps = await s.db.query<{ src_ip: string }>('SELECT DISTINCT src_ip FROM raw_events ORDER BY src_ip');
      expect(srcIps.map((x) => x.src_ip)).toEqual(['198.51.100.4', '2001:db8::1']);
      // A second load of the same folder keeps session_count at distinct sessions.
      await load(s, [base]);
      const again = await s.db.query<{ session_count: number }>('SELECT session_count FROM ip_inventory ORDER BY ip_address');
      expect(again.map((x) => Number(x.session_count))).toEqual([4, 1]);
    });

    it('--sensor fills the sensor of events, sessions and IPs', async () => {
      const f = writeLines(path.join(dir(), 'cowrie.json'), [
        ev('cowrie.session.connect', 'q1', 1, { sensor: '' }),
        ev('cowrie.session.connect', 'q2', 2, { sensor: 'from-file' }),
      ]);
      const s = await fresh();
      await load(s, [f], { sensor: 'edge-7' });
      const evs = await s.db.query<{ sensor: string }>('SELECT DISTINCT sensor FROM raw_events');
      expect(evs.map((x) => x.sensor)).toEqual(['edge-7']);
      const ses = await s.db.query<{ sensor: string }>('SELECT sensor FROM session_summaries ORDER BY session_id');
      expect(ses.map((x) => x.sensor)).toEqual(['edge-7', 'edge-7']);
      const [ip] = await s.db.query<{ sensors: unknown }>('SELECT sensors FROM ip_inventory');
      expect(readJson(ip.sensors)).toEqual(['edge-7']);
    });

    it('without --sensor an empty sensor field stays empty (NULL), and the event is kept', async () => {
      const f = writeLines(path.join(dir(), 'cowrie.json'), [ev('cowrie.session.connect', 'q3', 1, { sensor: '' })]);
      const s = await fresh();
      await load(s, [f]);
      const [e] = await s.db.query<{ sensor: string | null }>('SELECT sensor FROM raw_events');
      expect(e.sensor).toBeNull();
      const [ip] = await s.db.query<{ sensors: unknown }>('SELECT sensors FROM ip_inventory');
      expect(readJson(ip.sensors)).toEqual([]);
    });
  });
}
