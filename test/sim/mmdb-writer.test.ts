import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import maxmind, { Reader, type CountryResponse } from 'maxmind';
import { afterAll, describe, expect, it } from 'vitest';
import { MmdbTyped, MmdbWriter, mmdbDouble, parseNetwork, type MmdbMap } from '../../src/sim/mmdb-writer.js';
import { MAXMIND_FIXTURES } from '../helpers/fixtures.js';

type Rec = Record<string, unknown>;

/** The maxmind reader over a buffer, with records typed loosely for these tests. */
function readBuffer(buf: Buffer) {
  const r = new Reader<CountryResponse>(buf);
  return {
    metadata: r.metadata,
    get: (ip: string) => r.get(ip) as unknown as Rec | null,
    getWithPrefixLength: (ip: string) => r.getWithPrefixLength(ip) as unknown as [Rec | null, number],
  };
}
const read = (w: MmdbWriter) => readBuffer(w.toBuffer());

function nestedWriter(recordSize?: 24 | 28 | 32): MmdbWriter {
  const w = new MmdbWriter({ databaseType: 'Test-DB', recordSize });
  w.insert('1.2.0.0/16', { name: 'sixteen' });
  w.insert('1.2.3.0/24', { name: 'twentyfour' });
  w.insert('1.2.3.128/25', { name: 'twentyfive' });
  w.insert('8.8.8.8/32', { name: 'host' });
  w.insert('2a01:4f8::/32', { name: 'v6' });
  w.insert('2a01:4f8:1:2::/64', { name: 'v6-64' });
  return w;
}

describe('MmdbWriter tree', () => {
  for (const recordSize of [24, 28, 32] as const) {
    it(`nested networks, hosts, IPv6 and misses read back (record size ${recordSize})`, () => {
      const r = read(nestedWriter(recordSize));
      expect(r.metadata.recordSize).toBe(recordSize);
      expect(r.getWithPrefixLength('1.2.3.4')).toEqual([{ name: 'twentyfour' }, 25]);
      expect(r.getWithPrefixLength('1.2.3.200')).toEqual([{ name: 'twentyfive' }, 25]);
      // The rest of the /16 keeps its record; the prefix is the largest block left whole.
      expect(r.getWithPrefixLength('1.2.4.4')).toEqual([{ name: 'sixteen' }, 22]);
      expect(r.get('1.2.255.255')).toEqual({ name: 'sixteen' });
      expect(r.getWithPrefixLength('8.8.8.8')).toEqual([{ name: 'host' }, 32]);
      expect(r.get('8.8.8.9')).toBeNull();
      expect(r.get('1.3.0.0')).toBeNull();
      expect(r.get('2a01:4f8::1')).toEqual({ name: 'v6' });
      expect(r.getWithPrefixLength('2a01:4f8:1:2::99')).toEqual([{ name: 'v6-64' }, 64]);
      expect(r.get('2a01:4f8:1:3::99')).toEqual({ name: 'v6' });
      expect(r.get('2a01:4f9::1')).toBeNull();
      expect(r.get('::1')).toBeNull();
    });
  }

  it('reaches IPv4 through ::a.b.c.d and the ::ffff:0:0/96 alias', () => {
    const r = read(nestedWriter());
    expect(r.get('::1.2.3.4')).toEqual({ name: 'twentyfour' });
    expect(r.get('::ffff:1.2.3.4')).toEqual({ name: 'twentyfour' });
    expect(r.getWithPrefixLength('::ffff:8.8.8.8')).toEqual([{ name: 'host' }, 128]);
    expect(r.get('::ffff:8.8.4.4')).toBeNull();
  });

  it('treats an insert under ::ffff:0:0/96 as the IPv4 network', () => {
    const w = new MmdbWriter({ databaseType: 'T' });
    w.insert('::ffff:9.9.9.0/120', { v: 'mapped' });
    const r = read(w);
    expect(r.get('9.9.9.9')).toEqual({ v: 'mapped' });
    expect(r.get('::ffff:9.9.9.9')).toEqual({ v: 'mapped' });
  });

  it('lets a later, larger insert replace what it covers', () => {
    const w = new MmdbWriter({ databaseType: 'T' });
    w.insert('5.5.5.0/24', { v: 'small' });
    w.insert('5.5.0.0/16', { v: 'big' });
    expect(read(w).get('5.5.5.5')).toEqual({ v: 'big' });
  });

  it('covers the whole space with /0 and merges halves that hold the same record', () => {
    const w = new MmdbWriter({ databaseType: 'T' });
    w.insert('0.0.0.0/1', { v: 'x' });
    w.insert('128.0.0.0/1', { v: 'x' });
    const r = read(w);
    expect(r.getWithPrefixLength('200.1.1.1')).toEqual([{ v: 'x' }, 0]);
    const all = new MmdbWriter({ databaseType: 'T' });
    all.insert('::/0', { v: 'all' });
    expect(read(all).get('2a00::1')).toEqual({ v: 'all' });
    expect(read(all).get('4.4.4.4')).toEqual({ v: 'all' });
  });

  it('writes an IPv4-only tree when asked', () => {
    const w = new MmdbWriter({ databaseType: 'T', ipVersion: 4 });
    w.insert('10.0.0.0/8', { v: 'ten' });
    const r = read(w);
    expect(r.metadata.ipVersion).toBe(4);
    expect(r.getWithPrefixLength('10.9.9.9')).toEqual([{ v: 'ten' }, 8]);
    expect(() => w.insert('2a00::/12', { v: 1 })).toThrow(/IPv6/);
  });

  it('rejects malformed networks', () => {
    const w = new MmdbWriter({ databaseType: 'T' });
    for (const bad of ['1.2.3/24', '1.2.3.4/33', '1.2.3.0/24/1', '256.1.1.1', '1.2.3.4/24', 'gg::/16', '1::2::3', '2001:db8::/129', 'x']) {
      expect(() => w.insert(bad, { v: 1 }), bad).toThrow(RangeError);
    }
    expect(parseNetwork('2001:db8::1').prefix).toBe(128);
    expect(parseNetwork('1.2.3.4').prefix).toBe(128);
  });
});

describe('MmdbWriter data section', () => {
  it('round-trips every value type, choosing integer types by value', () => {
    const record = {
      zero: 0,
      u16: 65_535,
      u32: 65_536,
      u32max: 4_294_967_295,
      u64: 2 ** 40,
      big64: 18_446_744_073_709_551_615n,
      big128: 2n ** 100n,
      neg: -1,
      negMin: -2_147_483_648,
      negLarge: -3_000_000_000,
      dbl: 51.5142,
      dblNeg: -0.0931,
      wholeDouble: mmdbDouble(10),
      float: new MmdbTyped('float', 1.5),
      int32: new MmdbTyped('int32', 70_000),
      yes: true,
      no: false,
      text: 'Linköping 東京 🦀',
      empty: '',
      emptyMap: {},
      emptyArray: [],
      array: [1, 'two', 3.5, false, { four: [4] }],
      nested: { a: { b: { c: { d: 'deep' } } } },
      skipped: undefined,
      alsoSkipped: null,
    } satisfies MmdbMap;
    const w = new MmdbWriter({ databaseType: 'T' });
    w.insert('1.1.1.0/24', record);
    const got = read(w).get('1.1.1.1') as Rec;
    const { skipped: _s, alsoSkipped: _n, wholeDouble: _w, float: _f, int32: _i, ...plain } = record;
    expect(got).toEqual({ ...plain, u64: 2n ** 40n, wholeDouble: 10, float: 1.5, int32: 70_000 });
    expect(Object.keys(got)).not.toContain('skipped');
  });

  it("re-writes MaxMind's own GeoIP2-City test records and reads them back equal", async () => {
    const fixture = readBuffer(await readFile(join(MAXMIND_FIXTURES, 'GeoIP2-City-Test.mmdb')));
    const ips = ['81.2.69.142', '2.125.160.216', '89.160.20.112', '216.160.83.56', '175.16.199.0', '67.43.156.0', '202.196.224.0', '214.1.1.0', '2001:218::'];
    const w = new MmdbWriter({ databaseType: 'GeoIP2-City', languages: ['en', 'zh'] });
    const expected = ips.map((ip) => {
      const [rec, prefix] = fixture.getWithPrefixLength(ip);
      expect(rec, ip).not.toBeNull();
      w.insert(`${ip}/${prefix}`, rec as MmdbMap);
      return [ip, rec, prefix] as const;
    });
    const r = read(w);
    for (const [ip, rec, prefix] of expected) expect(r.getWithPrefixLength(ip), ip).toEqual([rec, prefix]);
  });

  it('uses every size form: literal, 29+, 285+ and 65,821+ bytes', () => {
    const w = new MmdbWriter({ databaseType: 'T' });
    const lengths = [28, 29, 284, 285, 65_820, 65_821, 200_000];
    lengths.forEach((n, i) => w.insert(`10.0.${i}.0/24`, { s: 'x'.repeat(n - 1) + 'y' }));
    // Sizes count UTF-8 bytes, not characters: 200 two-byte characters take the 285+ form.
    w.insert('10.2.0.0/24', { s: 'é'.repeat(200) });
    const wideMap = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]));
    w.insert('10.1.0.0/24', { wideMap, longArray: Array.from({ length: 70_000 }, (_, i) => i % 7) });
    const r = read(w);
    lengths.forEach((n, i) => {
      const s = (r.get(`10.0.${i}.1`) as Rec).s as string;
      expect(s.length).toBe(n);
      expect(s.endsWith('y')).toBe(true);
    });
    const big = r.get('10.1.0.1') as Rec;
    expect(big.wideMap).toEqual(wideMap);
    expect((big.longArray as number[]).length).toBe(70_000);
    expect((big.longArray as number[])[69_999]).toBe(69_999 % 7);
    expect(r.get('10.2.0.1')).toEqual({ s: 'é'.repeat(200) });
  });

  it('stores identical records once and shares repeated parts through pointers', () => {
    const marker = 'a-rather-long-organisation-name-that-should-be-stored-once';
    const one = new MmdbWriter({ databaseType: 'T' });
    one.insert('20.0.0.0/16', { org: marker });
    const many = new MmdbWriter({ databaseType: 'T' });
    for (let i = 0; i < 200; i++) many.insert(`20.${i}.0.0/16`, { org: marker, n: i });
    expect(many.recordCount).toBe(200);
    const buf = many.toBuffer();
    expect(buf.toString('latin1').split(marker).length - 1).toBe(1);
    const r = readBuffer(buf);
    expect(r.get('20.199.1.1')).toEqual({ org: marker, n: 199 });
    expect(r.get('20.7.1.1')).toEqual({ org: marker, n: 7 });

    const same = new MmdbWriter({ databaseType: 'T' });
    for (let i = 0; i < 200; i++) same.insert(`20.${i}.0.0/16`, { org: marker, country: { iso_code: 'GB' } });
    expect(same.recordCount).toBe(1);
    expect(same.networkCount).toBe(200);
    expect(same.toBuffer().toString('latin1').split(marker).length - 1).toBe(1);
  });

  it('reaches data beyond 16 MiB with 28- and 32-bit records, and picks 28 bits itself', () => {
    const huge = 'h'.repeat(16_800_000);
    const build = (recordSize?: 28 | 32): MmdbWriter => {
      const w = new MmdbWriter({ databaseType: 'T', recordSize });
      w.insert('30.0.0.0/8', { huge });
      // These records sit past 2^24 while their sibling records are empty (small values),
      // so a node's two 28-bit nibbles differ and a swap would show.
      w.insert('40.0.0.0/10', { after: 'left' });
      w.insert('40.128.0.0/9', { after: 'right' });
      return w;
    };
    for (const size of [28, 32] as const) {
      const r = read(build(size));
      expect(r.metadata.recordSize).toBe(size);
      expect(r.get('40.1.1.1')).toEqual({ after: 'left' });
      expect(r.get('40.200.1.1')).toEqual({ after: 'right' });
      expect(r.get('40.64.1.1')).toBeNull();
      expect(((r.get('30.1.1.1') as Rec).huge as string).length).toBe(16_800_000);
    }
    expect(read(build()).metadata.recordSize).toBe(28);
    const tooSmall = new MmdbWriter({ databaseType: 'T', recordSize: 24 });
    tooSmall.insert('30.0.0.0/8', { huge });
    tooSmall.insert('40.0.0.0/10', { after: 'x' });
    expect(() => tooSmall.toBuffer()).toThrow(/record size 24/);
  });
});

describe('MmdbWriter metadata and files', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('writes the metadata fields the reader expects', () => {
    const buildEpoch = new Date('2026-01-31T12:34:56Z');
    const w = new MmdbWriter({ databaseType: 'GeoLite2-City', description: { en: 'Test City', de: 'Teststadt' }, languages: ['en', 'de'], buildEpoch });
    w.insert('1.0.0.0/24', { a: 1 });
    const m = read(w).metadata;
    expect(m).toMatchObject({
      binaryFormatMajorVersion: 2,
      binaryFormatMinorVersion: 0,
      databaseType: 'GeoLite2-City',
      description: { en: 'Test City', de: 'Teststadt' },
      languages: ['en', 'de'],
      ipVersion: 6,
      recordSize: 24,
    });
    expect(m.buildEpoch.toISOString()).toBe('2026-01-31T12:34:56.000Z');
    // 96 nodes down to ::/96, 23 more to the /24, plus the path to the ::ffff alias.
    expect(m.nodeCount).toBeGreaterThan(96 + 23);
  });

  it('write() produces a file maxmind.open() reads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mmdb-writer-'));
    dirs.push(dir);
    const path = join(dir, 'x.mmdb');
    await nestedWriter().write(path);
    const r = await maxmind.open<CountryResponse>(path);
    expect(r.get('1.2.3.4') as unknown).toEqual({ name: 'twentyfour' });
  });

  it('handles 70,000 networks with the last insert winning each', () => {
    const w = new MmdbWriter({ databaseType: 'Bench' });
    let x = 12345;
    const next = (): number => (x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0);
    const last = new Map<string, number>();
    for (let i = 0; i < 70_000; i++) {
      const r = next();
      const net = `${1 + ((r >>> 24) % 200)}.${(r >>> 16) & 255}.${(r >>> 8) & 255}.0/24`;
      last.set(net, i);
      w.insert(net, { n: i, city: { names: { en: `City ${i % 3000}` } }, location: { latitude: mmdbDouble((i % 170) - 85 + 0.25) } });
    }
    const r = read(w);
    let wrong = 0;
    for (const [net, i] of last) if ((r.get(net.replace(/0\/24$/, '77')) as Rec | null)?.n !== i) wrong++;
    expect(wrong).toBe(0);
    expect(r.get('230.1.1.1')).toBeNull();
  });
});
