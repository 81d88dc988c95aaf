/**
 * `[maxmind] auto_update`: the orchestrated run updates the MaxMind databases first when they
 * are missing or older than update_after_days, against the MaxMind simulator. Storage plays no
 * part in this step, so it runs on SQLite only.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ACCOUNT_ID, fixture, LICENSE_KEY, writeDatabases, type Fixture } from '../geoip/helpers.js';
import { dialectCases } from '../helpers/dialects.js';
import type { World } from '../helpers/world.js';
import { folderText, sensorsWorld } from './helpers.js';

const sqlite = dialectCases().find((c) => c.name === 'sqlite')!;
const SENSORS = '[[sensor]]\nname = "alpha"\nlogpath = "logs/honeypot-01"\n';

describe.skipIf(sqlite.skip)('[sqlite] cowrie-orchestrate with [maxmind] auto_update', () => {
  let w: World | null = null;
  let f: Fixture | null = null;
  afterEach(async () => {
    await w?.close();
    await f?.close();
    w = null;
    f = null;
  });

  const maxmindSection = (fx: Fixture, licenseFile: string) => [
    `dir = ${JSON.stringify(fx.local)}`, `url = "${fx.sim.url}"`, 'auto_update = true', 'update_after_days = 7',
    'account_id = "env:ORCH_MM_ACCOUNT"', `license_key = "file:${licenseFile}"`,
  ].join('\n');

  it('installs missing databases before loading, then the refresh uses them; the key never shows', async () => {
    f = await fixture();
    const keyFile = path.join(f.root, 'mm.key');
    fs.writeFileSync(keyFile, `${LICENSE_KEY}\n`);
    const s = await sensorsWorld({ url: await sqlite.newUrl(), sensors: SENSORS, maxmind: maxmindSection(f, keyFile) });
    w = s.w;
    const r = await s.orchestrate([], { env: { ORCH_MM_ACCOUNT: ACCOUNT_ID } });
    expect(r.code, r.stderr).toBe(0);
    expect(f.sim.stats.downloads).toBe(2);
    expect(fs.existsSync(path.join(f.local, 'GeoLite2-City.mmdb'))).toBe(true);
    expect(r.stdout).toContain('maxmind update: updated');
    const store = await s.w.open();
    const geo = await store.db.query<{ n: number }>('SELECT count(*) AS n FROM ip_inventory WHERE geo_country IS NOT NULL');
    expect(Number(geo[0].n)).toBeGreaterThan(0);
    for (const text of [r.stdout, r.stderr, folderText(s.w.statusDir)]) expect(text).not.toContain(LICENSE_KEY);
  });

  it('databases newer than update_after_days: no download at all', async () => {
    f = await fixture();
    await writeDatabases(f.local, new Date());
    const keyFile = path.join(f.root, 'mm.key');
    fs.writeFileSync(keyFile, `${LICENSE_KEY}\n`);
    const s = await sensorsWorld({ url: await sqlite.newUrl(), sensors: SENSORS, maxmind: maxmindSection(f, keyFile) });
    w = s.w;
    const r = await s.orchestrate(['--json'], { env: { ORCH_MM_ACCOUNT: ACCOUNT_ID } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).maxmind_update).toEqual({ outcome: 'current', editions: [], error: null });
    expect(f.sim.stats.downloads + f.sim.stats.heads).toBe(0);
  });

  it('a failed update is named, the run goes on with what is there, exit 1; missing credentials are exit 2 before anything', async () => {
    // Old databases on disk: the update is due, fails, and the refresh uses what is there.
    f = await fixture({}, { local: new Date('2025-01-01T00:00:00Z') });
    const keyFile = path.join(f.root, 'mm.key');
    fs.writeFileSync(keyFile, 'wrong-key\n');
    const s = await sensorsWorld({ url: await sqlite.newUrl(), sensors: SENSORS, maxmind: maxmindSection(f, keyFile) });
    w = s.w;
    const r = await s.orchestrate([], { env: { ORCH_MM_ACCOUNT: ACCOUNT_ID } });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^maxmind update: failed: MaxMind update failed: GeoLite2-City: /m);
    expect(r.stdout).toMatch(/^alpha .* ok$/m);
    expect(r.stdout).toMatch(/^Refresh complete: /m);
    expect(r.stderr.trim().split('\n').at(-1)).toBe('cowrie-orchestrate: error: the MaxMind update failed');

    const none = await s.orchestrate([], { env: { ORCH_MM_ACCOUNT: '' } });
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split('\n')).toEqual([expect.stringMatching(/line \d+: maxmind\.account_id: environment variable ORCH_MM_ACCOUNT is not set$/)]);
  });
});
