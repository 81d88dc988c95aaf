import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { Reader, type AsnResponse, type CityResponse } from 'maxmind';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerMmdbCommand, runMmdbCommand } from '../../src/cli/sim/mmdb.js';
import { UsageError } from '../../src/errors.js';
import { writeWorldDatabases, type WrittenDatabase } from '../../src/sim/mmdb-world.js';
import { hash32, isPrivateIpv4, worldMaxmindHasAsn, worldNetwork } from '../../src/sim/world.js';

const SEED = 7;
const dirs: string[] = [];
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'mmdb-world-'));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Deterministic public IPv4 addresses spread over the whole space. */
function sampleIps(n: number): string[] {
  const ips: string[] = [];
  for (let i = 0; ips.length < n; i++) {
    const h = hash32(`ip${i}`, 99);
    const ip = `${h >>> 24}.${(h >>> 16) & 255}.${(h >>> 8) & 255}.${h & 255}`;
    if (!isPrivateIpv4(ip)) ips.push(ip);
  }
  return ips;
}

describe('writeWorldDatabases (all 65,536 /16s)', () => {
  let written: WrittenDatabase[];
  let city: Reader<CityResponse>;
  let asn: Reader<AsnResponse>;

  beforeAll(async () => {
    const dir = await tempDir();
    written = await writeWorldDatabases({ dir, seed: SEED, buildEpoch: new Date('2026-03-01T00:00:00Z') });
    city = new Reader<CityResponse>(await readFile(join(dir, 'GeoLite2-City.mmdb')));
    asn = new Reader<AsnResponse>(await readFile(join(dir, 'GeoLite2-ASN.mmdb')));
  });

  it('writes both files with GeoLite2 metadata', () => {
    expect(written.map((w) => w.databaseType)).toEqual(['GeoLite2-City', 'GeoLite2-ASN']);
    expect(city.metadata.databaseType).toBe('GeoLite2-City');
    expect(asn.metadata.databaseType).toBe('GeoLite2-ASN');
    expect(city.metadata.buildEpoch.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(city.metadata.ipVersion).toBe(6);
    // 65,536 /16s minus the private/reserved ones, plus the coarse IPv6 blocks.
    const publicSixteens = Array.from({ length: 65_536 }, (_, i) => `${i >> 8}.${i & 255}.0.1`).filter((ip) => !isPrivateIpv4(ip)).length;
    expect(written[0].networks).toBe(publicSixteens + 6);
  });

  it('gives every public /16 a GeoLite2-shaped City record from the world', () => {
    for (const ip of sampleIps(2000)) {
      const net = worldNetwork(ip, SEED);
      const [rec, prefix] = city.getWithPrefixLength(ip);
      expect(prefix).toBe(16);
      expect(rec?.country?.iso_code).toBe(net.country);
      expect(rec?.registered_country?.iso_code).toBe(net.country);
      expect(rec?.city?.names.en).toBe(net.city);
      expect(rec?.location?.latitude).toBeCloseTo(net.latitude, 4);
      expect(rec?.location?.longitude).toBeCloseTo(net.longitude, 4);
      expect(rec?.location?.accuracy_radius).toBeGreaterThan(0);
      expect(rec?.continent?.code).toMatch(/^(AF|AS|EU|NA|SA)$/);
    }
    const london = city.get('81.2.69.142');
    expect(Object.keys(london ?? {}).sort()).toEqual(['city', 'continent', 'country', 'location', 'registered_country']);
  });

  it('has an ASN only where world.ts says MaxMind knows an announced AS (~15% need Cymru)', () => {
    const ips = sampleIps(3000);
    let withoutAsn = 0;
    for (const ip of ips) {
      const as = worldNetwork(ip, SEED).as;
      const rec = asn.get(ip);
      if (worldMaxmindHasAsn(ip, SEED) && as) {
        expect(rec?.autonomous_system_number).toBe(as.asn);
        expect(as.name.startsWith(rec?.autonomous_system_organization ?? '?')).toBe(true);
      } else {
        expect(rec).toBeNull();
        withoutAsn++;
      }
    }
    expect(withoutAsn / ips.length).toBeGreaterThan(0.1);
    expect(withoutAsn / ips.length).toBeLessThan(0.25);
  });

  it('leaves private and reserved space empty and covers IPv6 coarsely, without city or ASN', () => {
    for (const ip of ['10.1.2.3', '127.0.0.1', '172.20.1.1', '192.168.1.1', '169.254.1.1', '224.0.0.5', '250.1.1.1']) {
      expect(city.get(ip), ip).toBeNull();
      expect(asn.get(ip), ip).toBeNull();
    }
    expect(city.get('2a01:4f8::1')?.country?.iso_code).toBe('DE');
    expect(city.get('2600:1f18::1')?.country?.iso_code).toBe('US');
    expect(city.get('2400:cb00::1')?.country?.iso_code).toBe('CN');
    expect(city.get('3001::1')?.country?.iso_code).toBe('US');
    expect(city.get('2a01:4f8::1')?.city).toBeUndefined();
    expect(city.get('4000::1')).toBeNull();
    expect(asn.get('2a01:4f8::1')).toBeNull();
  });
});

describe('writeWorldDatabases coverage', () => {
  it('covers only the first octets asked for', async () => {
    const dir = await tempDir();
    const out = await writeWorldDatabases({ dir, seed: SEED, coverage: [45, 10] });
    expect(out[0].networks).toBe(256 + 6);
    const city = new Reader<CityResponse>(await readFile(out[0].path));
    expect(city.get('45.9.9.9')?.country?.iso_code).toBe(worldNetwork('45.9.9.9', SEED).country);
    expect(city.get('46.9.9.9')).toBeNull();
  });
});

describe('cowrie-sim mmdb', () => {
  it('writes both files through the registered command and prints one line per file', async () => {
    const dir = await tempDir();
    const program = new Command().exitOverride();
    registerMmdbCommand(program);
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    try {
      await program.parseAsync(['node', 'cowrie-sim', 'mmdb', '--out', join(dir, 'new-sub'), '--seed', '3', '--build-date', '2026-01-02']);
    } finally {
      log.mockRestore();
    }
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^wrote .*GeoLite2-City\.mmdb \(GeoLite2-City, [\d,]+ networks, [\d,]+ bytes, built 2026-01-02\)$/);
    expect(lines[1]).toMatch(/GeoLite2-ASN\.mmdb .* built 2026-01-02\)$/);
    const asn = new Reader<AsnResponse>(await readFile(join(dir, 'new-sub', 'GeoLite2-ASN.mmdb')));
    expect(asn.metadata.buildEpoch.toISOString()).toBe('2026-01-02T00:00:00.000Z');
    const ip = sampleIps(50).find((x) => worldMaxmindHasAsn(x, 3) && worldNetwork(x, 3).as) as string;
    expect(asn.get(ip)?.autonomous_system_number).toBe(worldNetwork(ip, 3).as?.asn);
  });

  it('rejects a bad build date or seed before writing anything', async () => {
    const dir = await tempDir();
    const print = vi.fn();
    await expect(runMmdbCommand({ out: join(dir, 'x'), seed: '5', buildDate: '2026-02-30' }, print)).rejects.toThrow(UsageError);
    await expect(runMmdbCommand({ out: join(dir, 'x'), seed: 'abc' }, print)).rejects.toThrow(/--seed/);
    expect(print).not.toHaveBeenCalled();
    await expect(readFile(join(dir, 'x', 'GeoLite2-City.mmdb'))).rejects.toThrow(/ENOENT/);
  });
});
