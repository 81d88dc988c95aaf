import { existsSync } from 'node:fs';
import { copyFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { needsDownload } from '../../src/enrich/maxmind-update/update.js';
import { updateDatabases, type EditionResult, type UpdateOptions } from '../../src/enrich/maxmind-update/update.js';
import { readLocalDatabase } from '../../src/enrich/maxmind-update/install.js';
import { openMaxmind } from '../../src/enrich/sources/maxmind.js';
import { MemoryLogger } from '../../src/log.js';
import { ACCOUNT_ID, fixture, LICENSE_KEY, NEW_BUILD, OLD_BUILD, snapshot, writeDatabases, type Fixture } from './helpers.js';

const fixtures: Fixture[] = [];
afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((f) => f.close()));
});

async function setup(...args: Parameters<typeof fixture>): Promise<Fixture> {
  const f = await fixture(...args);
  fixtures.push(f);
  return f;
}

function run(f: Fixture, extra: Partial<UpdateOptions> = {}): Promise<EditionResult[]> {
  return updateDatabases({
    dir: f.local, editions: ['GeoLite2-City', 'GeoLite2-ASN'], baseUrl: f.sim.url,
    credentials: { accountId: ACCOUNT_ID, licenseKey: LICENSE_KEY }, logger: new MemoryLogger(), ...extra,
  });
}

const outcomes = (rs: EditionResult[]): string[] => rs.map((r) => `${r.edition}:${r.outcome}`);

describe('geoip update against the MaxMind simulator', () => {
  it('installs both databases on the first run, then only asks (HEAD) on the second', async () => {
    const f = await setup();
    const first = await run(f);
    expect(outcomes(first)).toEqual(['GeoLite2-City:installed', 'GeoLite2-ASN:installed']);
    for (const [edition, r] of [['GeoLite2-City', first[0]], ['GeoLite2-ASN', first[1]]] as const) {
      const local = await readLocalDatabase(join(f.local, `${edition}.mmdb`));
      expect(local.state === 'ok' && local.db).toMatchObject({ databaseType: edition, buildDate: '2026-01-09' });
      expect(r).toMatchObject({ checksum: 'verified', previous: null });
    }
    expect(f.sim.stats.downloads).toBe(2);
    // Nothing left behind: no temp folders, no .prev copies.
    expect((await readdir(f.local)).sort()).toEqual(['.cowrie-geoip-update.json', 'GeoLite2-ASN.mmdb', 'GeoLite2-City.mmdb']);

    const before = f.sim.stats.requestLog.length;
    const second = await run(f);
    expect(outcomes(second)).toEqual(['GeoLite2-City:current', 'GeoLite2-ASN:current']);
    const secondRequests = f.sim.stats.requestLog.slice(before);
    expect(secondRequests.length).toBeGreaterThan(0);
    expect(secondRequests.every((r) => r.method === 'HEAD')).toBe(true);
    expect(f.sim.stats.downloads).toBe(2);
  });

  it('downloads a newer remote build once, then nothing more', async () => {
    const f = await setup({}, { local: OLD_BUILD });
    const results = await run(f);
    expect(outcomes(results)).toEqual(['GeoLite2-City:installed', 'GeoLite2-ASN:installed']);
    expect(results[0]).toMatchObject({ previous: { buildDate: '2026-01-06' }, installed: { buildDate: '2026-01-09' } });
    expect(f.sim.stats.downloads).toBe(2);
    await run(f);
    await run(f);
    expect(f.sim.stats.downloads).toBe(2);

    // A newer release appears: exactly one more download per edition.
    await writeDatabases(f.served, new Date('2026-01-13T08:00:00Z'));
    expect(outcomes(await run(f))).toEqual(['GeoLite2-City:installed', 'GeoLite2-ASN:installed']);
    await run(f);
    expect(f.sim.stats.downloads).toBe(4);
  });

  it('does not download when the local build is newer than or as new as the server\'s; --force does', async () => {
    const f = await setup({}, { local: NEW_BUILD, served: OLD_BUILD });
    expect(outcomes(await run(f))).toEqual(['GeoLite2-City:current', 'GeoLite2-ASN:current']);
    expect(f.sim.stats.downloads).toBe(0);
    expect(outcomes(await run(f, { force: true, editions: ['GeoLite2-ASN'] }))).toEqual(['GeoLite2-ASN:installed']);
    expect(f.sim.stats.downloads).toBe(1);
  });

  it('never sends the credentials to the storage host the permalink redirects to', async () => {
    const f = await setup({}, { local: OLD_BUILD });
    await run(f);
    const storage = f.sim.stats.requestLog.filter((r) => r.host === 'storage');
    expect(storage.length).toBeGreaterThanOrEqual(4); // HEAD, .sha256 and archive of each edition
    expect(storage.every((r) => !r.authorization)).toBe(true);
    expect(f.sim.stats.storageAuthorizations).toEqual([]);
    expect(f.sim.stats.requestLog.filter((r) => r.host === 'permalink').every((r) => r.authorization)).toBe(true);
  });

  it('installs from a server that offers no .sha256, after checking archive and database', async () => {
    const f = await setup({ faults: { noSha256: true } });
    const results = await run(f);
    expect(results.map((r) => r.outcome === 'installed' && r.checksum)).toEqual(['not offered', 'not offered']);
  });

  type Case = { name: string; sim?: Parameters<typeof fixture>[0]; prepare?: (f: Fixture) => Promise<void>; reason: string; text: RegExp; downloads: number; archiveGets: number };
  const cases: Case[] = [
    { name: 'wrong credentials (401)', sim: { licenseKey: 'another-key' }, reason: 'auth', text: /authentication failed \(HTTP 401/, downloads: 0, archiveGets: 0 },
    { name: 'HTTP 429', sim: { faults: { tooManyRequests: true } }, reason: 'limit', text: /download limit reached \(HTTP 429/, downloads: 0, archiveGets: 0 },
    { name: 'the daily limit reached', sim: { dailyLimit: 0 }, reason: 'limit', text: /download limit reached.*not retrying/, downloads: 0, archiveGets: 1 },
    { name: 'a checksum mismatch', sim: { faults: { wrongChecksum: true } }, reason: 'checksum', text: /checksum mismatch/, downloads: 2, archiveGets: 2 },
    { name: 'a corrupt archive', sim: { faults: { corruptArchive: true } }, reason: 'corrupt', text: /corrupt archive/, downloads: 2, archiveGets: 2 },
    {
      name: 'the wrong edition', reason: 'wrong-edition', text: /is a GeoLite2-City, not a GeoLite2-ASN/, downloads: 2, archiveGets: 2,
      prepare: (f) => copyFile(join(f.served, 'GeoLite2-City.mmdb'), join(f.served, 'GeoLite2-ASN.mmdb')),
    },
  ];

  for (const c of cases) {
    it(`keeps the old files and names edition and reason on ${c.name}, without retrying`, async () => {
      const f = await setup(c.sim, { local: OLD_BUILD });
      await c.prepare?.(f);
      const before = await snapshot(f.local);
      const results = await run(f);
      const failed = results.filter((r) => r.outcome === 'failed');
      expect(failed.length).toBeGreaterThan(0);
      for (const r of failed) {
        expect(r).toMatchObject({ reason: c.reason });
        expect(r.outcome === 'failed' && r.message).toMatch(c.text);
      }
      if (c.reason === 'wrong-edition') expect(outcomes(results)).toEqual(['GeoLite2-City:installed', 'GeoLite2-ASN:failed']);
      else expect(await snapshot(f.local)).toEqual(before);
      if (c.reason === 'auth' || c.reason === 'limit') expect(outcomes(results)).toEqual(['GeoLite2-City:failed', 'GeoLite2-ASN:not-tried']);
      // At most one archive request per edition, and none after a 401 or a 429 (even on the .sha256).
      const archiveGets = f.sim.stats.requestLog.filter((r) => r.method === 'GET' && r.host === 'permalink' && r.suffix === 'tar.gz');
      expect(archiveGets.length).toBe(c.archiveGets);
      expect(f.sim.stats.downloads).toBe(c.downloads);
      const asn = await readLocalDatabase(join(f.local, 'GeoLite2-ASN.mmdb'));
      expect(asn.state === 'ok' && asn.db).toMatchObject({ databaseType: 'GeoLite2-ASN', buildDate: '2026-01-06' });
      expect((await readdir(f.local)).filter((n) => n.includes('update-') || n.endsWith('.prev'))).toEqual([]);
    });
  }

  it('refuses to run beside another update of the same folder, and takes over a dead run\'s lock', async () => {
    const f = await setup({}, { local: OLD_BUILD });
    const lockFile = join(f.local, '.cowrie-geoip-update.lock');
    await writeFile(lockFile, `${process.pid}\n`);
    await expect(run(f)).rejects.toThrow(`another geoip update (pid ${process.pid}) is running on ${f.local}`);
    expect(f.sim.stats.requests).toBe(0);
    await writeFile(lockFile, '4194305\n'); // above Linux's pid_max: no such process
    expect(outcomes(await run(f))).toEqual(['GeoLite2-City:installed', 'GeoLite2-ASN:installed']);
    expect(existsSync(lockFile)).toBe(false);
  });

  it('keeps the old files when the server cannot be reached', async () => {
    const f = await setup({}, { local: OLD_BUILD });
    const before = await snapshot(f.local);
    const url = f.sim.url;
    await f.sim.close();
    const results = await run(f, { baseUrl: url });
    expect(results.map((r) => r.outcome === 'failed' && r.reason)).toEqual(['network', 'network']);
    expect(await snapshot(f.local)).toEqual(before);
  });
});

describe('needsDownload', () => {
  const ok = { state: 'ok' as const, path: 'x', db: { path: 'x', databaseType: 'GeoLite2-City', buildEpoch: new Date('2026-01-09T23:50:00Z'), buildDate: '2026-01-09' } };
  const remote = (day: string | null, version = 'v1') => ({ day, lastModified: null, fileName: null, version });

  it('compares the server\'s release day with the local build day', () => {
    expect(needsDownload(ok, remote('2026-01-10'), undefined, false)).toBe(true);
    expect(needsDownload(ok, remote('2026-01-09'), undefined, false)).toBe(false);
    expect(needsDownload(ok, remote('2026-01-08'), undefined, false)).toBe(false);
    expect(needsDownload({ state: 'missing', path: 'x' }, remote('2026-01-01'), undefined, false)).toBe(true);
    expect(needsDownload(ok, remote('2026-01-01'), undefined, true)).toBe(true);
  });

  it('does not download the same release again when its server date is later than its build date', () => {
    // Built 23:50, published after midnight: the release we installed must not look newer forever.
    const recorded = { remote: 'v1', buildEpoch: ok.db.buildEpoch.getTime() / 1000 };
    expect(needsDownload(ok, remote('2026-01-10', 'v1'), recorded, false)).toBe(false);
    expect(needsDownload(ok, remote('2026-01-13', 'v2'), recorded, false)).toBe(true);
  });

  it('refuses to guess when the server gives no date', () => {
    expect(() => needsDownload(ok, remote(null), undefined, false)).toThrow(/no Last-Modified or dated file name/);
  });
});

describe('refresh and old databases', () => {
  it('warns about a database older than 30 days and names the update command', async () => {
    const f = await setup({}, { local: OLD_BUILD });
    const log = new MemoryLogger();
    const mm = await openMaxmind({ dir: f.local, logger: log, now: () => new Date('2026-03-01T00:00:00Z') });
    mm.close();
    const warnings = log.lines.filter((l) => l.startsWith('[WARNING]'));
    expect(warnings).toHaveLength(2);
    for (const w of warnings) expect(w).toContain(`cowrie-enrich geoip update --maxmind-dir ${f.local}`);
  });
});
