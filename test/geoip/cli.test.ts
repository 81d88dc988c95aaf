/** `cowrie-enrich geoip update|status` as users run them (needs `npx tsc -p tsconfig.json` first). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { ACCOUNT_ID, fixture, LICENSE_KEY, NEW_BUILD, OLD_BUILD, snapshot, type Fixture } from './helpers.js';

const fixtures: Fixture[] = [];
afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((f) => f.close()));
});

async function setup(...args: Parameters<typeof fixture>): Promise<Fixture> {
  const f = await fixture(...args);
  fixtures.push(f);
  return f;
}

/** No config file, no GeoIP.conf and no credentials unless a test gives them. */
const CLEAN_ENV = { GEOIPUPDATE_CONF_FILE: '', MAXMIND_ACCOUNT_ID: '', MAXMIND_LICENSE_KEY: '', COWRIE_CONFIG: '', COWRIE_MAXMIND_DIR: '', COWRIE_MAXMIND_URL: '' };
const CREDS = { MAXMIND_ACCOUNT_ID: ACCOUNT_ID, MAXMIND_LICENSE_KEY: LICENSE_KEY };

function enrich(f: Fixture, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli('cowrie-enrich', ['geoip', ...args], { env: { ...CLEAN_ENV, ...env }, cwd: f.root });
}

function expectNoSecrets(r: CliResult): void {
  const basic = Buffer.from(`${ACCOUNT_ID}:${LICENSE_KEY}`).toString('base64');
  for (const text of [r.stdout, r.stderr]) {
    expect(text).not.toContain(LICENSE_KEY);
    expect(text).not.toContain(basic);
    expect(text).not.toContain('X-Amz-Signature');
  }
}

describe('cowrie-enrich geoip update', () => {
  it('installs, then reports both current; exit 0; no secrets printed or sent to the storage host', async () => {
    const f = await setup();
    const args = ['update', '--maxmind-dir', f.local, '--maxmind-url', f.sim.url];
    const first = await enrich(f, args, CREDS);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^GeoLite2-City: installed the 2026-01-09 build \([\d,]+ bytes downloaded, SHA-256 verified\): .*GeoLite2-City\.mmdb$/),
      expect.stringMatching(/^GeoLite2-ASN: installed the 2026-01-09 build/),
    ]);
    const second = await enrich(f, args, CREDS);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^GeoLite2-City: up to date \(built 2026-01-09, server has 2026-01-09\)/);
    const quiet = await enrich(f, [...args, '--quiet'], CREDS);
    expect(quiet).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(f.sim.stats.downloads).toBe(2);
    for (const r of [first, second, quiet]) expectNoSecrets(r);
    expect(f.sim.stats.storageAuthorizations).toEqual([]);
  });

  it('a failure prints one line naming the edition and the reason, exit 1, old files untouched, no secrets', async () => {
    const f = await setup({ licenseKey: 'the-real-key' }, { local: OLD_BUILD });
    const before = await snapshot(f.local);
    const r = await enrich(f, ['update', '--maxmind-dir', f.local, '--maxmind-url', f.sim.url], CREDS);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^cowrie-enrich: error: GeoLite2-City: not updated: authentication failed \(HTTP 401.*GeoLite2-ASN: not tried.*their old files are untouched$/m);
    expectNoSecrets(r);
    expect(await snapshot(f.local)).toEqual(before);
  });

  it('without credentials says so in one line and exits 2 before any request', async () => {
    const f = await setup();
    const r = await enrich(f, ['update', '--maxmind-dir', f.local, '--maxmind-url', f.sim.url]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^cowrie-enrich: error: no MaxMind credentials: set MAXMIND_ACCOUNT_ID and MAXMIND_LICENSE_KEY/)]);
    const half = await enrich(f, ['update', '--maxmind-dir', f.local, '--maxmind-url', f.sim.url], { MAXMIND_ACCOUNT_ID: ACCOUNT_ID });
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('MAXMIND_LICENSE_KEY (or maxmind.license_key) is not set');
    expect(f.sim.stats.requests).toBe(0);
  });

  it('refuses to send credentials over plain http to anything but loopback (exit 2)', async () => {
    const f = await setup();
    const r = await enrich(f, ['update', '--maxmind-dir', f.local, '--maxmind-url', 'http://mirror.example.org'], CREDS);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--maxmind-url must be https://');
  });

  it('honours a geoipupdate GeoIP.conf: credentials, EditionIDs and DatabaseDirectory', async () => {
    const f = await setup();
    const conf = join(f.root, 'GeoIP.conf');
    await writeFile(conf, [
      '# GeoIP.conf file for geoipupdate',
      `AccountID ${ACCOUNT_ID}`,
      `LicenseKey ${LICENSE_KEY}`,
      'EditionIDs GeoLite2-ASN',
      `DatabaseDirectory ${f.local}`,
      'LockFile /tmp/not-ours.lock',
      '',
    ].join('\n'));
    const r = await enrich(f, ['update', '--geoip-conf', conf, '--maxmind-url', f.sim.url]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^GeoLite2-ASN: installed the 2026-01-09 build .*local\/GeoLite2-ASN\.mmdb$/)]);
    // The same file found through GEOIPUPDATE_CONF_FILE, as geoipupdate reads it.
    const again = await enrich(f, ['update', '--maxmind-url', f.sim.url], { GEOIPUPDATE_CONF_FILE: conf });
    expect(again.stdout).toMatch(/^GeoLite2-ASN: up to date/);
    expect(f.sim.stats.downloads).toBe(1);
    expectNoSecrets(r);
    const missing = await enrich(f, ['update', '--geoip-conf', join(f.root, 'nope.conf'), '--maxmind-url', f.sim.url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read the GeoIP\.conf .*nope\.conf: ENOENT/);
  });
});

describe('cowrie-enrich geoip status', () => {
  it('exit 0 when every database is present and young enough, 1 when one is old or missing, 2 on a bad flag', async () => {
    const f = await setup({}, { local: NEW_BUILD });
    const fresh = await enrich(f, ['status', '--maxmind-dir', f.local, '--max-age-days', '99999']);
    expect(fresh.code).toBe(0);
    expect(fresh.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^GeoLite2-City {2}ok +built 2026-01-09, \d+ days old {2}.*GeoLite2-City\.mmdb$/),
      expect.stringMatching(/^GeoLite2-ASN {3}ok +built 2026-01-09/),
    ]);
    const old = await enrich(f, ['status', '--maxmind-dir', f.local, '--max-age-days', '0']);
    expect(old.code).toBe(1);
    expect(old.stdout).toContain('older than 0 days');
    expect(old.stderr.trim()).toMatch(/^cowrie-enrich: error: 2 of 2 MaxMind databases missing, unusable or older than 0 days .*cowrie-enrich geoip update/);
    const missing = await enrich(f, ['status', '--maxmind-dir', f.local, '--editions', 'GeoLite2-City,GeoLite2-Country', '--max-age-days', '99999']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/^GeoLite2-Country +missing/m);
    expect(missing.stderr).toContain('1 of 2 MaxMind databases');
    const bad = await enrich(f, ['status', '--maxmind-dir', f.local, '--max-age-days', 'soon']);
    expect(bad.code).toBe(2);
    const traversal = await enrich(f, ['status', '--maxmind-dir', f.local, '--editions', '../etc/passwd']);
    expect(traversal.code).toBe(2);
    expect(traversal.stderr).toContain('is not an edition ID');
  });
});
