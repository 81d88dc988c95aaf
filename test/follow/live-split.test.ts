/**
 * Live mode's split of the IP sources (`follow --enrich`, src/enrich/live.ts), run in-process on
 * the real refresh core against the simulators: the fast loop commits MaxMind/Cymru with GreyNoise
 * left pending; the HTTP loop answers the longest-waiting IPs and keeps the rest of each row; the
 * two loops never select the same IP; a nightly refresh afterwards neither repeats nor skips any.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { refresh, type RefreshOptions } from '../../src/enrich/refresh.js';
import { StatusEmitter } from '../../src/status/emitter.js';
import { selectIpsPendingOnly, selectIpsToEnrich } from '../../src/store/ip-repo.js';
import { readJson } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { isoMicros } from '../../src/store/time.js';
import { dialectCases } from '../helpers/dialects.js';
import { MemoryLogger } from '../../src/log.js';
import { buildWorld, GN_KEY, insertIps, publicIps, type World } from '../helpers/world.js';

const SEED = 7;
const DAY = 86_400_000;
const ago = (ms: number) => isoMicros(Date.now() - ms);

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] follow --enrich: the fast and HTTP loops`, () => {
    let w: World | null = null;
    afterEach(async () => {
      await w?.close();
      w = null;
    });

    async function run(store: Store, o: Pick<RefreshOptions, 'ips' | 'live'>) {
      const config = resolveConfig({
        db: w!.url, maxmindDir: w!.mmdbDir, cymruHost: w!.cymru.host, cymruPort: w!.cymru.port, greynoiseUrl: w!.greynoise.url,
        greynoiseRate: 200, sources: 'maxmind,cymru,greynoise',
      }, { GREYNOISE_API_KEY: GN_KEY }, {});
      const logger = new MemoryLogger();
      const r = await refresh(store, { sessions: 'skip', files: 'skip', ipList: [], config, logger, status: new StatusEmitter({}), ...o });
      return { r, lines: logger.lines };
    }

    type Row = { ip_address: string; current_asn: number | string | null; geo_country: string | null; enrichment: unknown; enrichment_pending: string | null; asn_last_verified: string | null };
    const rows = async (store: Store) => new Map((await store.db.query<Row>(
      'SELECT ip_address, current_asn, geo_country, enrichment, enrichment_pending, asn_last_verified FROM ip_inventory',
    )).map((r) => [r.ip_address, { ...r, enrichment: readJson<Record<string, unknown>>(r.enrichment) ?? {} }]));

    it('fast loop: ASN and country now, GreyNoise pending; HTTP loop: oldest first, merged into the row; disjoint selections; a nightly refresh finishes the rest once', async () => {
      w = await buildWorld({ url: await d.newUrl(), seed: SEED, sessions: 0 });
      const store = await w.open();
      const ips = publicIps(12, { firstOctets: [23, 45, 61, 89], seed: SEED, perNetwork: 3 });
      await insertIps(store, ips);

      // Fast loop: GreyNoise deferred, not asked; every row gets its ASN and country, owed GreyNoise.
      const fast = await run(store, { ips: 500, live: { defer: ['greynoise'] } });
      expect(fast.r.failedSources, fast.lines.join('\n')).toEqual([]);
      expect(w.greynoise.stats.ipsRequested).toEqual([]);
      let got = await rows(store);
      for (const ip of ips) {
        const r = got.get(ip)!;
        expect(r.enrichment_pending, ip).toBe('greynoise');
        expect(r.geo_country, ip).not.toBeNull();
        expect(r.asn_last_verified, ip).not.toBeNull();
        expect(r.enrichment).toHaveProperty('maxmind');
        expect(r.enrichment).not.toHaveProperty('greynoise');
      }
      const before = got;

      // The queue as the loops see it: waiting since different times (ips[0] longest); one owed Cymru too
      // (the fast loop's), one a few hours from stale (neither loop's: the fast loop takes it once stale),
      // one stale (the fast loop's: due for every source).
      const [owesCymru, nearStale, stale] = [ips[9], ips[10], ips[11]];
      for (const [k, ip] of ips.entries()) await store.db.run('UPDATE ip_inventory SET enrichment_updated_at = ? WHERE ip_address = ?', [ago((12 - k) * 60_000), ip]);
      await store.db.run("UPDATE ip_inventory SET enrichment_pending = 'cymru,greynoise' WHERE ip_address = ?", [owesCymru]);
      await store.db.run('UPDATE ip_inventory SET enrichment_updated_at = ? WHERE ip_address = ?', [ago(29.8 * DAY), nearStale]);
      await store.db.run('UPDATE ip_inventory SET enrichment_updated_at = ? WHERE ip_address = ?', [ago(31 * DAY), stale]);
      const cutoff = ago(30 * DAY);
      const fastSel = (await selectIpsToEnrich(store.db, { cutoff, limit: null, unavailable: ['greynoise'] })).map((c) => c.ip);
      const httpSel = (await selectIpsPendingOnly(store.db, { sources: ['greynoise'], freshSince: ago(29 * DAY), limit: null })).map((c) => c.ip);
      const nightly = (await selectIpsToEnrich(store.db, { cutoff, limit: null })).map((c) => c.ip);
      expect(fastSel.sort()).toEqual([owesCymru, stale].sort());
      expect(httpSel).toEqual(ips.slice(0, 9));
      expect(fastSel.filter((ip) => httpSel.includes(ip))).toEqual([]);
      expect([...fastSel, ...httpSel, nearStale].sort()).toEqual([...nightly].sort());

      // HTTP loop, 3 at a time: the three waiting longest get GreyNoise; the row keeps its MaxMind part,
      // columns and asn_last_verified; nothing else is asked.
      const slow = await run(store, { ips: 3, live: { onlyPending: ['greynoise'] } });
      expect(slow.r.failedSources, slow.lines.join('\n')).toEqual([]);
      expect([...w.greynoise.stats.ipsRequested].sort()).toEqual(ips.slice(0, 3).sort());
      got = await rows(store);
      for (const ip of ips.slice(0, 3)) {
        const r = got.get(ip)!;
        const was = before.get(ip)!;
        expect(r.enrichment_pending, ip).toBeNull();
        expect(r.enrichment).toHaveProperty('greynoise');
        expect(r.enrichment.maxmind).toEqual(was.enrichment.maxmind);
        expect([r.current_asn, r.geo_country, r.asn_last_verified]).toEqual([was.current_asn, was.geo_country, was.asn_last_verified]);
      }

      // The nightly refresh takes exactly what is left (everything still owed something) and asks
      // GreyNoise once for each of those IPs: nothing repeated, nothing skipped.
      const requestedBefore = w.greynoise.stats.ipsRequested.length;
      const r = await w.refresh(['--ips', '0', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`[INFO] Found ${nightly.length - 3} IPs to enrich`);
      expect([...w.greynoise.stats.ipsRequested.slice(requestedBefore)].sort()).toEqual(ips.slice(3).sort());
      got = await rows(store);
      for (const ip of ips) expect([ip, got.get(ip)!.enrichment_pending]).toEqual([ip, null]);
    });
  });
}
