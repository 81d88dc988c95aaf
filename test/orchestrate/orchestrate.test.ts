/**
 * cowrie-orchestrate end to end (issue 13): three sensors, one broken — the good two load with
 * their names, one refresh runs against the simulators, the table and the JSON name the broken
 * one, exit 1; env:/file: secrets work and never show; enable_asn_inventory = false keeps IPs
 * seen only on that sensor out of the refresh.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GN_KEY, readJsonFile, VT_KEY, type World } from '../helpers/world.js';
import { dialectCases } from '../helpers/dialects.js';
import { folderText, sensorsWorld } from './helpers.js';

const SENSORS = `
[[sensor]]
name = "alpha"
logpath = "logs/honeypot-01"

[[sensor]]
name = "beta"
logpath = ["logs/honeypot-02/cowrie.json*"]
mode = "bulk"
enable_asn_inventory = false

[[sensor]]
name = "broken"
logpath = "logs/no-such-sensor"

[[sensor]]
name = "off"
logpath = "logs/dshield-01"
enabled = false
`;

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] cowrie-orchestrate`, () => {
    let w: World | null = null;
    afterEach(async () => {
      await w?.close();
      w = null;
    });

    it('loads the good sensors, refreshes, prints the table and exits 1 naming the broken one', async () => {
      const s = await sensorsWorld({ url: await d.newUrl(), sensors: SENSORS, enrichment: 'files = "all"' });
      w = s.w;
      const r = await s.orchestrate([]);
      expect(r.code, r.stderr).toBe(1);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^sensor\s+files\s+events\s+new sessions\s+new IPs\s+dead letters\s+seconds\s+outcome$/);
      expect(lines.find((l) => l.startsWith('alpha '))).toMatch(/ ok$/);
      expect(lines.find((l) => l.startsWith('beta '))).toMatch(/ ok$/);
      expect(lines.find((l) => l.startsWith('broken '))).toMatch(/ failed$/);
      expect(lines.find((l) => l.startsWith('off '))).toMatch(/ skipped$/);
      expect(r.stdout).toContain(`broken: failed: nothing to load: no such file or folder: ${path.join(s.w.dir, 'logs/no-such-sensor')}`);
      expect(lines[lines.length - 1]).toMatch(/^Refresh complete: \d+ sessions, \d+ files, \d+ IPs updated/);
      expect(r.stderr.trim().split('\n').at(-1)).toBe('cowrie-orchestrate: error: 1 sensor(s) failed: broken');

      const store = await s.w.open();
      const bySensor = await store.db.query<{ sensor: string; n: number | string }>('SELECT sensor, count(*) AS n FROM session_summaries GROUP BY sensor ORDER BY sensor');
      expect(bySensor.map((x) => x.sensor)).toEqual(['alpha', 'beta']);
      // The table's counts are the database's.
      const report = readJsonFile<{ sensors: Array<{ name: string; new_sessions: number; outcome: string; error: string | null }>; exit_code: number; state: string; refresh: { outcome: string; ips_enriched: number } }>(path.join(s.w.statusDir, 'orchestrate.json'));
      expect(report).toMatchObject({ exit_code: 1, state: 'failed', refresh: { outcome: 'ok' } });
      for (const row of bySensor) expect(report.sensors.find((x) => x.name === row.sensor)!.new_sessions).toBe(Number(row.n));
      expect(report.sensors.map((x) => [x.name, x.outcome])).toEqual([['alpha', 'ok'], ['beta', 'ok'], ['broken', 'failed'], ['off', 'skipped']]);

      // enable_asn_inventory = false on beta: IPs seen only there are not refreshed, every other one is.
      const ips = await store.db.query<{ ip_address: string; sensors: unknown; enrichment_updated_at: string | null }>('SELECT ip_address, sensors, enrichment_updated_at FROM ip_inventory');
      const only = (v: unknown) => JSON.stringify(typeof v === 'string' ? JSON.parse(v) : v) === '["beta"]';
      const onlyBeta = ips.filter((x) => only(x.sensors)).map((x) => x.ip_address).sort();
      expect(onlyBeta.length).toBeGreaterThan(0);
      expect(ips.filter((x) => x.enrichment_updated_at === null).map((x) => x.ip_address).sort()).toEqual(onlyBeta);
      expect(report.refresh.ips_enriched).toBe(ips.length - onlyBeta.length);
      expect(s.w.greynoise.stats.ipsRequested.filter((ip) => onlyBeta.includes(ip))).toEqual([]);
      // The env: key reached GreyNoise and the file: key VirusTotal (a wrong key is a 401, a failed source).
      expect(s.w.greynoise.stats.ipsRequested.length).toBeGreaterThan(0);
      expect(s.w.virustotal.stats.requests).toBeGreaterThan(0);
      for (const text of [r.stdout, r.stderr, folderText(s.w.statusDir)]) {
        expect(text).not.toContain(GN_KEY);
        expect(text).not.toContain(VT_KEY);
      }

      // Again with --json: nothing new (delta), the same outcome as one object on stdout.
      const again = await s.orchestrate(['--json', '--skip-enrich']);
      expect(again.code, again.stderr).toBe(1);
      const doc = JSON.parse(again.stdout) as { sensors: Array<Record<string, unknown>>; refresh: Record<string, unknown>; exit_code: number };
      expect(doc.exit_code).toBe(1);
      expect(Object.keys(doc.sensors[0]).sort()).toEqual(['dead_letters', 'error', 'events', 'files', 'name', 'new_ips', 'new_sessions', 'outcome', 'seconds'].sort());
      expect(doc.sensors.find((x) => x.name === 'alpha')).toMatchObject({ outcome: 'ok', new_sessions: 0 });
      expect(doc.sensors.find((x) => x.name === 'broken')).toMatchObject({ outcome: 'failed' });
      expect(doc.refresh).toMatchObject({ outcome: 'skipped', error: '--skip-enrich' });
    });

    it('--only loads just the named sensors; --dry-run prints the plan and touches nothing; logs carry no control characters', async () => {
      const s = await sensorsWorld({ url: await d.newUrl(), sensors: SENSORS });
      w = s.w;
      const dry = await s.orchestrate(['--dry-run']);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toContain(`sensor alpha (delta): load\n  ${path.join(s.w.dir, 'logs/honeypot-01')}: 2 file(s)`);
      expect(dry.stdout).toContain('sensor off (delta): skip (disabled)');
      expect(dry.stdout).toContain('refresh: cowrie-enrich refresh --ips 0, leaving out IPs seen only on beta');
      if (s.w.url.startsWith('sqlite:')) expect(fs.existsSync(s.w.url.slice('sqlite:'.length))).toBe(false);
      const store = await s.w.open();
      expect(await store.db.query('SELECT 1 FROM ip_inventory')).toEqual([]);
      expect(folderText(s.w.statusDir)).toBe('');

      const r = await s.orchestrate(['--only', 'alpha', '--skip-enrich']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
      const sensors = await store.db.query<{ sensor: string }>('SELECT DISTINCT sensor FROM session_summaries');
      expect(sensors.map((x) => x.sensor)).toEqual(['alpha']);
      expect(r.stdout).toMatch(/^beta .* skipped$/m);
    });
  });
}
