import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { MemoryLogger } from '../../src/log.js';
import { MAXMIND_TTL_SECONDS, needsCymru, openMaxmind, type MaxmindValue } from '../../src/enrich/sources/maxmind.js';
import { writeWorldDatabases } from '../../src/sim/mmdb-world.js';
import { MmdbWriter } from '../../src/sim/mmdb-writer.js';
import { hash32, worldMaxmindHasAsn, worldNetwork } from '../../src/sim/world.js';
import { MAXMIND_FIXTURES } from '../helpers/fixtures.js';

const FIXTURES = MAXMIND_FIXTURES;
const TODAY = new Date('2026-11-27T10:00:00Z');
const dirs: string[] = [];

async function tempDir(files: Record<string, string | Buffer> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'maxmind-src-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    if (typeof content === 'string') await copyFile(join(FIXTURES, content), join(dir, name));
    else await writeFile(join(dir, name), content);
  }
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const warnings = (log: MemoryLogger): string[] => log.lines.filter((l) => l.startsWith('[WARNING]'));
const FIXTURE_FILES = { 'GeoIP2-City.mmdb': 'GeoIP2-City-Test.mmdb', 'GeoLite2-ASN.mmdb': 'GeoLite2-ASN-Test.mmdb' };

describe('MaxMind source against MaxMind test databases', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir(FIXTURE_FILES);
  });

  it('returns the known City and ASN entries', async () => {
    const log = new MemoryLogger();
    const src = await openMaxmind({ dir, logger: log, now: () => TODAY });
    const ips = ['81.2.69.142', '1.0.0.1', '12.81.96.0', '2600:6000::', '8.8.8.8', '2001:218::', '::ffff:81.2.69.142'];
    const [london, google, att, merit, dns, japan, mapped] = src.lookup(ips);
    expect(london).toMatchObject({ key: '81.2.69.142', status: 'hit' });
    expect(london.value).toEqual({
      country_code: 'GB',
      country_name: 'United Kingdom',
      city: 'London',
      latitude: 51.5142,
      longitude: -0.0931,
      accuracy_radius: 10,
      asn: null,
      as_org: null,
      city_db_build: '2026-02-04',
      asn_db_build: '2026-02-04',
    } satisfies MaxmindValue);
    expect(needsCymru(london.value)).toBe(true);
    expect(google.status).toBe('hit');
    expect(google.value).toMatchObject({ asn: 15169, as_org: 'Google Inc.', country_code: null, city: null });
    expect(needsCymru(google.value)).toBe(false);
    expect(att.value).toMatchObject({ asn: 7018, as_org: null });
    expect(merit.value).toMatchObject({ asn: 237, as_org: 'Merit Network Inc.' });
    expect(dns).toMatchObject({ key: '8.8.8.8', status: 'miss', value: null });
    expect(needsCymru(dns.value)).toBe(true);
    expect(japan.value).toMatchObject({ country_code: 'JP', country_name: 'Japan', city: null, latitude: 35.68536 });
    expect(mapped.value?.city).toBe('London');
    for (const r of [london, google, dns]) {
      expect(r.fetchedAt).toBe(TODAY.toISOString());
      expect(r.ttlSeconds).toBe(MAXMIND_TTL_SECONDS);
      expect(r.version).toBe('GeoIP2-City 2026-02-04, GeoLite2-ASN 2026-02-04');
    }
    expect(MAXMIND_TTL_SECONDS).toBe(30 * 86_400);
    src.close();
  });

  it('warns once per database older than 30 days, naming the file and build date', async () => {
    const log = new MemoryLogger();
    const src = await openMaxmind({ dir, logger: log, now: () => TODAY });
    const w = warnings(log);
    expect(w).toHaveLength(2);
    expect(w[0]).toContain(join(dir, 'GeoIP2-City.mmdb'));
    expect(w[1]).toContain(join(dir, 'GeoLite2-ASN.mmdb'));
    for (const line of w) expect(line).toMatch(/built 2026-02-04 \(295 days ago, older than 30 days\)/);
    src.lookup(['81.2.69.142', '1.0.0.1']);
    expect(warnings(log)).toHaveLength(2);
    expect(src.info()).toMatchObject({
      dir,
      city: { file: 'GeoIP2-City.mmdb', databaseType: 'GeoIP2-City', buildDate: '2026-02-04', stale: true },
      asn: { file: 'GeoLite2-ASN.mmdb', databaseType: 'GeoLite2-ASN', buildDate: '2026-02-04', stale: true },
    });
    src.close();
  });

  it('does not warn about a database younger than 30 days', async () => {
    const log = new MemoryLogger();
    const src = await openMaxmind({ dir, logger: log, now: () => new Date('2026-03-01T00:00:00Z') });
    expect(warnings(log)).toEqual([]);
    expect(src.info().city?.stale).toBe(false);
  });

  it('treats invalid input and data-less records as misses', async () => {
    const src = await openMaxmind({ dir, logger: new MemoryLogger(), now: () => TODAY });
    const [bad, empty, anycast] = src.lookup(['not-an-ip', '', '214.1.1.1']);
    expect(bad).toMatchObject({ status: 'miss', value: null, reason: 'not an IP address' });
    expect(empty.status).toBe('miss');
    // The City record there holds only traits.is_anycast; the ASN database knows it.
    expect(anycast.value).toMatchObject({ asn: 721, country_code: null });
    src.close();
    expect(() => src.lookup(['1.0.0.1'])).toThrow(/close/);
  });

  it('reads GeoLite2-City and prefers GeoIP2-City when both are present', async () => {
    const lite = await tempDir({ 'GeoLite2-City.mmdb': 'GeoLite2-City-Test.mmdb' });
    const src = await openMaxmind({ dir: lite, logger: new MemoryLogger(), now: () => TODAY });
    expect(src.info().city?.file).toBe('GeoLite2-City.mmdb');
    expect(src.lookup(['81.2.69.142'])[0].value?.city).toBe('London');
    const both = await tempDir({ 'GeoLite2-City.mmdb': 'GeoLite2-City-Test.mmdb', 'GeoIP2-City.mmdb': 'GeoIP2-City-Test.mmdb' });
    const src2 = await openMaxmind({ dir: both, logger: new MemoryLogger(), now: () => TODAY });
    expect(src2.info().city?.databaseType).toBe('GeoIP2-City');
  });
});

describe('MaxMind databases opened again in one process (live mode opens them every cycle)', () => {
  it('a database replaced on disk (as geoip update renames a new one in) is read again; an unchanged one answers the same', async () => {
    const dir = await tempDir({ 'GeoLite2-City.mmdb': 'GeoIP2-City-Test.mmdb' });
    const first = await openMaxmind({ dir, logger: new MemoryLogger(), now: () => TODAY });
    expect(first.info().city?.databaseType).toBe('GeoIP2-City');
    const before = first.lookup(['81.2.69.142'])[0];
    first.close();
    const again = await openMaxmind({ dir, logger: new MemoryLogger(), now: () => TODAY });
    expect(again.info().city?.databaseType).toBe('GeoIP2-City');
    expect(again.lookup(['81.2.69.142'])[0].value).toEqual(before.value);
    again.close();
    // A new file renamed over the old one: a new inode, so it is read, not taken from memory.
    await copyFile(join(FIXTURES, 'GeoLite2-City-Test.mmdb'), join(dir, 'next.tmp'));
    await rename(join(dir, 'next.tmp'), join(dir, 'GeoLite2-City.mmdb'));
    const replaced = await openMaxmind({ dir, logger: new MemoryLogger(), now: () => TODAY });
    expect(replaced.info().city?.databaseType).toBe('GeoLite2-City');
    replaced.close();
  });
});

describe('MaxMind source with missing or unusable databases', () => {
  it('a directory without any database is a usage error naming what is missing (exit 2)', async () => {
    const dir = await tempDir();
    const log = new MemoryLogger();
    const err = await openMaxmind({ dir, logger: log }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(new RegExp(`^MaxMind directory ${dir} holds no usable database: .*City database not found.*; .*ASN database not found .*GeoLite2-ASN\\.mmdb`));
    // One line for the user, not warnings before it.
    expect(warnings(log)).toEqual([]);
  });

  it('a directory that does not exist is a usage error (exit 2)', async () => {
    const dir = join(await tempDir(), 'no-such-folder');
    const err = await openMaxmind({ dir, logger: new MemoryLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(`MaxMind directory ${dir} does not exist or is not a folder (--maxmind-dir / COWRIE_MAXMIND_DIR)`);
  });

  it('one database missing: one warning, and every IP left to Cymru for its ASN', async () => {
    const dir = await tempDir({ 'GeoLite2-City.mmdb': 'GeoLite2-City-Test.mmdb' });
    const log = new MemoryLogger();
    const src = await openMaxmind({ dir, logger: log, now: () => new Date('2026-02-05T00:00:00Z') });
    const w = warnings(log);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/ASN database not found .*GeoLite2-ASN\.mmdb.*every IP will need Cymru/);
    const [r] = src.lookup(['81.2.69.142']);
    expect(needsCymru(r.value)).toBe(true);
    expect(src.info().asn).toBeNull();
  });

  it('warns once per database when no directory is configured', async () => {
    const log = new MemoryLogger();
    const src = await openMaxmind({ logger: log });
    expect(warnings(log)).toHaveLength(2);
    expect(warnings(log)[0]).toContain('No MaxMind directory configured');
    expect(warnings(log)[0]).toContain('IPs stay pending for MaxMind');
    expect(src.lookup(['1.0.0.1'])[0].status).toBe('miss');
  });

  it('names a corrupt file once and treats it as missing', async () => {
    const dir = await tempDir({ 'GeoLite2-City.mmdb': Buffer.from('this is not a maxmind database at all'), 'GeoLite2-ASN.mmdb': 'GeoLite2-ASN-Test.mmdb' });
    const log = new MemoryLogger();
    const src = await openMaxmind({ dir, logger: log, now: () => new Date('2026-02-05T00:00:00Z') });
    expect(warnings(log)).toEqual([expect.stringMatching(new RegExp(`${join(dir, 'GeoLite2-City.mmdb')} is not a valid MaxMind DB file`))]);
    expect(src.info().city).toBeNull();
    expect(src.lookup(['1.0.0.1'])[0].value).toMatchObject({ asn: 15169, country_code: null, city_db_build: null, asn_db_build: '2026-02-04' });
  });

  it('names an unreadable file once (here a folder in its place)', async () => {
    const dir = await tempDir({ 'GeoLite2-ASN.mmdb': 'GeoLite2-ASN-Test.mmdb' });
    await mkdir(join(dir, 'GeoLite2-City.mmdb'));
    const log = new MemoryLogger();
    await openMaxmind({ dir, logger: log, now: () => new Date('2026-02-05T00:00:00Z') });
    expect(warnings(log)).toHaveLength(1);
    expect(warnings(log)[0]).toMatch(/GeoLite2-City\.mmdb cannot be read \(.*EISDIR/);
  });

  it('answers IPv6 as a miss from an IPv4-only database', async () => {
    const dir = await tempDir();
    const w = new MmdbWriter({ databaseType: 'GeoLite2-ASN', ipVersion: 4 });
    w.insert('1.0.0.0/24', { autonomous_system_number: 15169, autonomous_system_organization: 'Google Inc.' });
    await w.write(join(dir, 'GeoLite2-ASN.mmdb'));
    const src = await openMaxmind({ dir, logger: new MemoryLogger() });
    const [v4, v6] = src.lookup(['1.0.0.1', '2600:6000::']);
    expect(v4.value?.asn).toBe(15169);
    expect(v6.status).toBe('miss');
  });

  it('falls back to GeoLite2 when the GeoIP2 file is corrupt', async () => {
    const dir = await tempDir({ 'GeoIP2-City.mmdb': Buffer.alloc(100), 'GeoLite2-City.mmdb': 'GeoLite2-City-Test.mmdb', 'GeoLite2-ASN.mmdb': 'GeoLite2-ASN-Test.mmdb' });
    const log = new MemoryLogger();
    const src = await openMaxmind({ dir, logger: log, now: () => new Date('2026-02-05T00:00:00Z') });
    expect(warnings(log)).toHaveLength(1);
    expect(warnings(log)[0]).toContain('GeoIP2-City.mmdb');
    expect(src.info().city?.file).toBe('GeoLite2-City.mmdb');
  });

  it('tells the user to decompress a gzip file or unpack a download', async () => {
    const asn = await readFile(join(FIXTURES, 'GeoLite2-ASN-Test.mmdb'));
    const dir = await tempDir({ 'GeoLite2-ASN.mmdb': gzipSync(asn), 'GeoLite2-City.tar.gz': Buffer.from('x') });
    const err = await openMaxmind({ dir, logger: new MemoryLogger(), now: () => TODAY }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/City database not found .*found GeoLite2-City\.tar\.gz: extract GeoLite2-City\.mmdb/);
    expect((err as Error).message).toMatch(/GeoLite2-ASN\.mmdb is gzip-compressed: decompress it/);

    const nested = await tempDir({ 'GeoLite2-City.mmdb': 'GeoLite2-City-Test.mmdb' });
    await mkdir(join(nested, 'GeoLite2-ASN_20260204'));
    const log2 = new MemoryLogger();
    await openMaxmind({ dir: nested, logger: log2, now: () => new Date('2026-02-05T00:00:00Z') });
    expect(warnings(log2)).toEqual([expect.stringContaining('found folder GeoLite2-ASN_20260204')]);
  });

});

describe('MaxMind source over the simulated world databases', () => {
  const SEED = 11;
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
    await writeWorldDatabases({ dir, seed: SEED, coverage: [5, 45, 91, 103, 185, 203] });
  });

  it('gives the ASN world.ts has, and leaves the rest to Cymru', async () => {
    const log = new MemoryLogger();
    const src = await openMaxmind({ dir, logger: log });
    expect(warnings(log)).toEqual([]);
    const ips: string[] = [];
    for (let i = 0; ips.length < 1500; i++) {
      const h = hash32(`w${i}`, 5);
      ips.push(`${[5, 45, 91, 103, 185, 203][h % 6]}.${(h >>> 8) & 255}.${(h >>> 16) & 255}.${h >>> 24}`);
    }
    const results = src.lookup(ips);
    let cymru = 0;
    results.forEach((r, i) => {
      const ip = ips[i];
      const net = worldNetwork(ip, SEED);
      expect(r.status).toBe('hit');
      expect(r.value?.country_code).toBe(net.country);
      expect(r.value?.city).toBe(net.city);
      const expected = worldMaxmindHasAsn(ip, SEED) && net.as ? net.as.asn : null;
      expect(r.value?.asn).toBe(expected);
      if (needsCymru(r.value)) cymru++;
    });
    expect(cymru / ips.length).toBeGreaterThan(0.08);
    expect(cymru / ips.length).toBeLessThan(0.25);
    expect(src.lookup(['10.0.0.1', '6.1.1.1']).map((r) => r.status)).toEqual(['miss', 'miss']);
  });

  it('warns about an old simulated database, once per file', async () => {
    const old = await tempDir();
    await writeWorldDatabases({ dir: old, seed: SEED, coverage: [45], buildEpoch: new Date('2026-09-01T00:00:00Z') });
    const log = new MemoryLogger();
    await openMaxmind({ dir: old, logger: log, now: () => TODAY });
    const w = warnings(log);
    expect(w).toHaveLength(2);
    expect(w[0]).toMatch(/GeoLite2-City\.mmdb was built 2026-09-01 \(87 days ago/);
    expect(w[1]).toMatch(/GeoLite2-ASN\.mmdb was built 2026-09-01/);
  });
});
