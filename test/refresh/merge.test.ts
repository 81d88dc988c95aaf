/**
 * How the sources combine in ip_inventory and asn_inventory: MaxMind's ASN and country win over
 * Cymru's, a source not asked this run keeps its previous sub-object, counts follow an IP that
 * changes AS, and an ASN's country is never taken from an IP's location.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { worldNetwork } from '../../src/sim/world.js';
import { readJson } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { buildWorld, insertIps, logLines, type World } from '../helpers/world.js';
import { MAXMIND_FIXTURES } from '../helpers/fixtures.js';

const FIXTURES = MAXMIND_FIXTURES;

/** MaxMind's own test databases under the names the reader looks for. */
function fixtureDir(): string {
  const dir = tempDir('cowrie-mm-fixture-');
  fs.symlinkSync(path.join(FIXTURES, 'GeoLite2-City-Test.mmdb'), path.join(dir, 'GeoLite2-City.mmdb'));
  fs.symlinkSync(path.join(FIXTURES, 'GeoLite2-ASN-Test.mmdb'), path.join(dir, 'GeoLite2-ASN.mmdb'));
  return dir;
}

type Row = { ip_address: string; current_asn: number | null; geo_country: string | null; enrichment_pending: string | null; enrichment: unknown };

async function rows(store: Store): Promise<Map<string, Row & { e: Record<string, Record<string, unknown>> }>> {
  const got = await store.db.query<Row>('SELECT ip_address, current_asn, geo_country, enrichment_pending, enrichment FROM ip_inventory');
  return new Map(got.map((r) => [r.ip_address, { ...r, current_asn: r.current_asn === null ? null : Number(r.current_asn), e: readJson(r.enrichment) ?? {} }]));
}

async function asn(store: Store, n: number) {
  const [r] = await store.db.query<{ organization_name: string | null; organization_country: string | null; unique_ip_count: number; total_session_count: number }>(
    'SELECT organization_name, organization_country, unique_ip_count, total_session_count FROM asn_inventory WHERE asn_number = ?', [n]);
  return r ? { ...r, unique_ip_count: Number(r.unique_ip_count), total_session_count: Number(r.total_session_count) } : undefined;
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] merging the sources`, () => {
    let w: World | null = null;
    let store: Store | null = null;
    afterEach(async () => {
      await w?.close(); // closes the stores it opened too
      w = null;
    });

    it('MaxMind wins for ASN and country, Cymru fills gaps, earlier answers stay, counts follow the IP', async () => {
      // 1.0.0.1 and 1.128.0.1: ASN in MaxMind's test database, no city; 81.2.69.142: city (GB), no ASN.
      const [google, telstra, london] = ['1.0.0.1', '1.128.0.1', '81.2.69.142'];
      w = await buildWorld({ url: await d.newUrl(), seed: 7, maxmind: 'none' });
      store = await w.open();
      await insertIps(store, [google, telstra, london]);

      // Run 1 without MaxMind configured: one warning each, everything from Cymru, MaxMind still owed.
      const r1 = await w.refresh(['--ips', '0', '--verbose']);
      expect(r1.code, r1.stderr).toBe(0);
      expect(logLines(r1.stderr).filter((l) => l.startsWith('[WARNING] No MaxMind directory configured'))).toHaveLength(2);
      expect(logLines(r1.stderr)).toContain('[INFO] Pass 3 complete: 0 IPs enriched, 0 errors');
      expect(logLines(r1.stderr)).toContain('[INFO] 3 IPs stay pending for a source not asked this run (maxmind unavailable); a run that can ask picks them up');
      let got = await rows(store);
      for (const ip of [google, telstra, london]) expect(got.get(ip)!.enrichment_pending).toBe('maxmind');
      // Another run without MaxMind does not redo them for nothing.
      const idle = await w.refresh(['--ips', '0', '--verbose']);
      expect(logLines(idle.stderr)).toContain('[INFO] Found 0 IPs to enrich');
      for (const ip of [google, telstra, london]) {
        const net = worldNetwork(ip, 7);
        expect(got.get(ip)!.current_asn).toBe(net.as!.asn);
        expect(got.get(ip)!.geo_country).toBe(net.country);
      }
      const worldGoogleAs = worldNetwork(google, 7).as!.asn;
      expect((await asn(store, worldGoogleAs))!.unique_ip_count).toBeGreaterThanOrEqual(1);
      const before = (await asn(store, worldGoogleAs))!.unique_ip_count;
      const cymruBefore = got.get(google)!.e.cymru;

      // Run 2 with MaxMind's test databases (old: one warning each, not a failure).
      const mm = fixtureDir();
      const r2 = await w.refresh(['--ips', '0', '--stale-days', '0', '--maxmind-dir', mm, '--verbose']);
      expect(r2.code, r2.stderr).toBe(0);
      expect(logLines(r2.stderr).filter((l) => /^\[WARNING\] MaxMind database .* older than 30 days/.test(l))).toHaveLength(2);
      expect(logLines(r2.stderr)).toContain('[INFO] Pass 1 complete: 1 IPs need Cymru ASN enrichment');
      got = await rows(store);
      // MaxMind's ASN wins; Cymru was not asked for it and its earlier answer stays in the document.
      expect(got.get(google)!.current_asn).toBe(15169);
      expect(got.get(google)!.e.maxmind).toMatchObject({ asn: 15169, as_org: 'Google Inc.', country_code: null });
      expect(got.get(google)!.e.cymru).toEqual(cymruBefore);
      // No MaxMind country for it: Cymru's registry country fills the gap.
      expect(got.get(google)!.geo_country).toBe(worldNetwork(google, 7).country);
      expect(got.get(telstra)!.current_asn).toBe(1221);
      // MaxMind's country wins over Cymru's; the ASN still comes from Cymru.
      expect(got.get(london)!.geo_country).toBe('GB');
      expect(got.get(london)!.current_asn).toBe(worldNetwork(london, 7).as!.asn);

      // The AS the IP left lost it; the new one has it. Its country is not the IP's location.
      expect((await asn(store, worldGoogleAs))!.unique_ip_count).toBe(before - 1);
      expect(await asn(store, 15169)).toEqual({ organization_name: 'Google Inc.', organization_country: null, unique_ip_count: 1, total_session_count: 1 });
      expect(await asn(store, 1221)).toMatchObject({ organization_name: 'Telstra Pty Ltd', organization_country: null, unique_ip_count: 1 });
    });
  });
}
