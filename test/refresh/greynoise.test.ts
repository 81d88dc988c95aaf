/**
 * GreyNoise in pass 3 against its simulator: answers merged (404 = cached "not observed"), the rate
 * never exceeded, 429 Retry-After honoured, a rejected key, the daily quota in api_quota, an outage.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isGreyNoiseRoutable } from '../../src/enrich/sources/greynoise.js';
import { greyNoiseAnswer } from '../../src/sim/greynoise-sim.js';
import { readBool, readJson } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { utcDay } from '../../src/store/time.js';
import { dialectCases } from '../helpers/dialects.js';
import path from 'node:path';
import { buildWorld, expectInOrder, insertIps, logLines, maxInWindow, publicIps, readJsonFile, type World } from '../helpers/world.js';

const IP_SET = (n: number) => publicIps(n, { firstOctets: [23, 45, 61, 89, 130, 185, 201], seed: 7, perNetwork: 3 });

async function greyNoiseOf(store: Store): Promise<Map<string, { pending: string | null; scanner: boolean | null; gn: Record<string, unknown> | undefined }>> {
  const rows = await store.db.query<{ ip_address: string; enrichment_pending: string | null; is_scanner: unknown; enrichment: unknown }>(
    'SELECT ip_address, enrichment_pending, is_scanner, enrichment FROM ip_inventory');
  return new Map(rows.map((r) => [r.ip_address, {
    pending: r.enrichment_pending, scanner: readBool(r.is_scanner),
    gn: readJson<Record<string, Record<string, unknown>>>(r.enrichment)?.greynoise,
  }]));
}

const dupes = (xs: string[]) => xs.filter((x, i) => xs.indexOf(x) !== i);

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] refresh pass 3: GreyNoise`, () => {
    let w: World | null = null;
    let store: Store | null = null;
    afterEach(async () => {
      await w?.close(); // closes the stores it opened too
      w = null;
    });

    async function setup(ips: string[], opts: Parameters<typeof buildWorld>[0]['greynoise'] = {}, cymruLatency = 0): Promise<World> {
      w = await buildWorld({ url: await d.newUrl(), seed: 7, greynoise: opts, cymru: { latencyMsPerBatch: cymruLatency } });
      store = await w.open();
      await insertIps(store, ips);
      return w;
    }

    it('merges answers (404 = a cached "not observed"), overlaps passes 1-2, and never exceeds --greynoise-rate', async () => {
      const ips = [...IP_SET(60), '2a02:1810:4d02:5a00::7'];
      await setup(ips, {}, 300);
      const r = await w!.refresh(['--ips', '0', '--greynoise-rate', '20', '--cymru-batch-size', '5', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      const times = w!.greynoise.stats.requestTimes;
      expect(times).toHaveLength(60);
      expect(maxInWindow(times, 1000)).toBeLessThanOrEqual(20);
      // GreyNoise started before Cymru was done: it runs while passes 1 and 2 work.
      expect(Math.min(...times)).toBeLessThan(Math.max(...w!.cymru.stats.connectionTimes));
      const got = await greyNoiseOf(store!);
      const cache = new Map((await store!.db.query<{ cache_key: string; value: unknown; expires_at: string }>(
        "SELECT cache_key, value, expires_at FROM enrichment_cache WHERE service = 'greynoise'")).map((c) => [c.cache_key, c]));
      let notObserved = 0;
      for (const ip of ips.filter(isGreyNoiseRoutable)) {
        const truth = greyNoiseAnswer(ip, 7);
        const row = got.get(ip)!;
        expect(row.pending).toBeNull();
        if (truth.status === 404) {
          notObserved++;
          expect(row.gn).toMatchObject({ observed: false, noise: false, riot: false });
          expect(row.scanner).toBe(false);
        } else {
          expect(row.gn).toMatchObject({
            observed: true, noise: truth.body.noise, riot: truth.body.riot, classification: truth.body.classification,
            name: truth.body.name, last_seen: truth.body.last_seen, link: truth.body.link,
          });
          expect(row.scanner).toBe(truth.body.noise);
        }
        // Cached for 7 days, negative answers too.
        const c = cache.get(ip)!;
        expect(Date.parse(c.expires_at) - Date.now()).toBeGreaterThan(6.9 * 86_400_000);
        expect(readJson<Record<string, unknown>>(c.value)).toMatchObject({ observed: truth.status !== 404 });
      }
      expect(notObserved).toBeGreaterThan(10);
      expect(w!.greynoise.stats.byStatus[404]).toBe(notObserved);
      expect(got.get('2a02:1810:4d02:5a00::7')!.gn).toBeUndefined();
    });

    it('--greynoise-mode enterprise: one multi quick-check request for the lot, noise and riot kept', async () => {
      const ips = IP_SET(50);
      await setup(ips);
      const r = await w!.refresh(['--ips', '0', '--greynoise-mode', 'enterprise', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      expect(w!.greynoise.stats.requests).toBe(1);
      expect(new Set(w!.greynoise.stats.ipsRequested)).toEqual(new Set(ips));
      const got = await greyNoiseOf(store!);
      for (const ip of ips) {
        const truth = greyNoiseAnswer(ip, 7);
        const seen = truth.status === 200;
        expect(got.get(ip)!.gn).toMatchObject({ observed: seen, noise: seen ? truth.body.noise : false, riot: seen ? truth.body.riot : false });
        expect(got.get(ip)!.scanner).toBe(seen ? truth.body.noise : false);
      }
      const [q] = await store!.db.query<{ used: number }>("SELECT used FROM api_quota WHERE service = 'greynoise' AND day = ?", [utcDay()]);
      expect(Number(q.used)).toBe(1);
    });

    it('429 with Retry-After: waits as told, retries, and finishes without errors', async () => {
      const ips = IP_SET(24);
      await setup(ips, { ratePerSecond: 4 });
      const r = await w!.refresh(['--ips', '0', '--greynoise-rate', '8', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      const log = w!.greynoise.stats.log;
      const throttled = log.filter((e) => e.status === 429);
      expect(throttled.length).toBeGreaterThan(0);
      for (const t of throttled) {
        // The same IP is asked again only after the Retry-After second has passed.
        const next = log.find((e) => e.key === t.key && e.time > t.time);
        expect(next, t.key).toBeDefined();
        expect(next!.time - t.time).toBeGreaterThanOrEqual(995);
      }
      expect(maxInWindow(w!.greynoise.stats.requestTimes, 1000)).toBeLessThanOrEqual(8);
      expect(logLines(r.stderr)).toContain('[INFO] Pass 3 complete: 24 IPs enriched, 0 errors');
      const got = await greyNoiseOf(store!);
      for (const ip of ips) expect(got.get(ip)!.gn, ip).toBeDefined();
    });

    it('401: one clear error, GreyNoise off for the run, the rest enriched, exit 1, pending for the next run', async () => {
      const ips = IP_SET(40);
      await setup(ips);
      const r = await w!.refresh(['--ips', '0', '--verbose'], { env: { GREYNOISE_API_KEY: 'wrong-key-123' } });
      expect(r.code, r.stderr).toBe(1);
      const mentions = r.stderr.split('\n').filter((l) => /401|API key|rejected|source failed/i.test(l));
      expect(mentions).toEqual([
        '[ERROR] GreyNoise rejected the API key (HTTP 401); GreyNoise is off for the rest of this run',
        'cowrie-enrich: error: source failed for the whole run: greynoise (the rest was enriched; affected items stay pending)',
      ]);
      expect(r.stderr).not.toContain('wrong-key-123');
      expect(w!.greynoise.stats.requests).toBeLessThanOrEqual(16);
      // Owed GreyNoise, not failed by it: pending, neither enriched nor errors.
      expectInOrder(logLines(r.stderr), [
        '[INFO] Pass 3 complete: 0 IPs enriched, 0 errors',
        '[INFO] 40 IPs stay pending for a source not asked this run (stopped early); a run that can ask picks them up',
      ]);
      const got = await greyNoiseOf(store!);
      for (const ip of ips) expect(got.get(ip)!.pending).toBe('greynoise');
      const cy = await store!.db.query<{ n: string }>('SELECT count(*) AS n FROM ip_inventory WHERE current_asn IS NOT NULL');
      expect(Number(cy[0].n)).toBe(40);
      // With the right key the next run asks about those IPs.
      const again = await w!.refresh(['--ips', '0', '--verbose']);
      expect(again.code, again.stderr).toBe(0);
      expect(logLines(again.stderr)).toContain('[INFO] Found 40 IPs to enrich');
      expect([...(await greyNoiseOf(store!)).values()].every((x) => x.pending === null && x.gn)).toBe(true);
    });

    it('our daily quota (api_quota): stops at the limit, shared across processes, the rest picked up the next day', async () => {
      const ips = IP_SET(30);
      await setup(ips);
      const r1 = await w!.refresh(['--ips', '0', '--greynoise-daily-quota', '12', '--verbose']);
      expect(r1.code, r1.stderr).toBe(0);
      expect(w!.greynoise.stats.requests).toBe(12);
      expect(logLines(r1.stderr)).toContain('[WARNING] GreyNoise daily quota spent; 18 IPs left pending for the next run');
      expect(logLines(r1.stderr)).toContain('[INFO] Pass 3 complete: 12 IPs enriched, 0 errors');
      const quota = () => store!.db.query<{ used: number }>("SELECT used FROM api_quota WHERE service = 'greynoise' AND day = ?", [utcDay()]);
      expect(Number((await quota())[0].used)).toBe(12);
      let got = await greyNoiseOf(store!);
      expect([...got.values()].filter((x) => x.pending === 'greynoise')).toHaveLength(18);

      // Another process the same day: the quota is spent for it too.
      const r2 = await w!.refresh(['--ips', '0', '--greynoise-daily-quota', '12', '--verbose']);
      expect(r2.code, r2.stderr).toBe(0);
      expect(logLines(r2.stderr)).toContain('[INFO] Found 18 IPs to enrich');
      expect(w!.greynoise.stats.requests).toBe(12);

      // The next UTC day (moved in SQL): 12 more, none asked twice; then the rest.
      await store!.db.run("UPDATE api_quota SET day = '2000-01-01' WHERE service = 'greynoise'");
      const r3 = await w!.refresh(['--ips', '0', '--greynoise-daily-quota', '12']);
      expect(r3.code, r3.stderr).toBe(0);
      expect(w!.greynoise.stats.requests).toBe(24);
      await store!.db.run("UPDATE api_quota SET day = '2000-01-02' WHERE service = 'greynoise' AND day = ?", [utcDay()]);
      const r4 = await w!.refresh(['--ips', '0', '--greynoise-daily-quota', '12']);
      expect(r4.code, r4.stderr).toBe(0);
      expect(dupes(w!.greynoise.stats.ipsRequested)).toEqual([]);
      expect(new Set(w!.greynoise.stats.ipsRequested)).toEqual(new Set(ips));
      got = await greyNoiseOf(store!);
      expect([...got.values()].every((x) => x.pending === null && x.gn)).toBe(true);
    });

    it("the server's daily limit (429 \"daily rate limit\"): stop, mark today spent, pending", async () => {
      const ips = IP_SET(25);
      await setup(ips, { dailyQuota: 10 });
      const r = await w!.refresh(['--ips', '0', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      expect(w!.greynoise.stats.byStatus[200] + (w!.greynoise.stats.byStatus[404] ?? 0)).toBe(10);
      expect(w!.greynoise.stats.byStatus[429]).toBeGreaterThan(0);
      const [q] = await store!.db.query<{ used: number }>("SELECT used FROM api_quota WHERE service = 'greynoise' AND day = ?", [utcDay()]);
      expect(Number(q.used)).toBe(10_000);
      const got = await greyNoiseOf(store!);
      expect([...got.values()].filter((x) => x.gn)).toHaveLength(10);
      expect([...got.values()].filter((x) => x.pending === 'greynoise')).toHaveLength(15);
      expect(logLines(r.stderr).some((l) => /^\[WARNING\] GreyNoise daily quota spent; \d+ IPs left pending for the next run$/.test(l))).toBe(true);
    });

    it('an outage (HTTP 500): retried, then pending; a run of failures stops GreyNoise for the run; the next run finishes', async () => {
      const ips = IP_SET(30);
      await setup(ips, { faults: { error500Rate: 1 } });
      const r = await w!.refresh(['--ips', '0', '--verbose']);
      expect(r.code, r.stderr).toBe(1);
      const lines = logLines(r.stderr);
      expect(lines.filter((l) => /^\[ERROR\] GreyNoise failed for 10 IPs in a row \(GreyNoise: HTTP 500 \(gave up after 4 attempts\)\): not asking it again in this run; the rest stays pending$/.test(l))).toHaveLength(1);
      const errors = Number(/Pass 3 complete: 0 IPs enriched, (\d+) errors/.exec(r.stderr)![1]);
      expect(errors).toBeGreaterThanOrEqual(10);
      expect(errors).toBeLessThanOrEqual(16);
      // Each IP tried at most 4 times (1 + 3 retries); the IPs not yet started were never asked.
      const perIp = new Map<string, number>();
      for (const ip of w!.greynoise.stats.ipsRequested) perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
      expect(Math.max(...perIp.values())).toBeLessThanOrEqual(4);
      expect([...perIp.values()].filter((n) => n === 4).length).toBeLessThanOrEqual(16);
      expect(perIp.size).toBeLessThan(30);
      const got = await greyNoiseOf(store!);
      expect([...got.values()].every((x) => x.pending === 'greynoise')).toBe(true);

      w!.greynoise.setOptions({ faults: {} });
      const again = await w!.refresh(['--ips', '0', '--verbose']);
      expect(again.code, again.stderr).toBe(0);
      expect(logLines(again.stderr)).toContain('[INFO] Pass 3 complete: 30 IPs enriched, 0 errors');
      expect([...(await greyNoiseOf(store!)).values()].every((x) => x.pending === null && x.gn)).toBe(true);
    });

    it('an outage over fewer IPs than the in-a-row rule needs still fails the run: exit 1', async () => {
      const ips = IP_SET(4);
      await setup(ips, { faults: { error500Rate: 1 } });
      const r = await w!.refresh(['--ips', '0', '--verbose']);
      expect(r.code, r.stderr).toBe(1);
      const lines = logLines(r.stderr);
      expect(lines).toContain('[ERROR] GreyNoise answered none of the IPs asked (4 failed; last: GreyNoise: HTTP 500 (gave up after 4 attempts)); they stay pending for the next run');
      expect(lines).toContain('[INFO] Pass 3 complete: 0 IPs enriched, 4 errors');
      expect(r.stderr).toMatch(/cowrie-enrich: error: source failed for the whole run: greynoise/);
      expect([...(await greyNoiseOf(store!)).values()].every((x) => x.pending === 'greynoise')).toBe(true);
    });

    it('status: requests and answers explain each other; IPv6 answered locally is counted apart and never cached', async () => {
      const v6 = ['2a02:1810:4d02:5a00::7', '2a02:1810:4d02:5a00::8'];
      const v4 = IP_SET(12);
      await setup([...v4, ...v6], { faults: { failTimesPerKey: 1 } });
      const r = await w!.refresh(['--ips', '0', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      const p3 = readJsonFile<Record<string, number>>(path.join(w!.statusDir, 'pass_3_merge.json'));
      // Every IPv4 address failed once (500) and was answered on the retry.
      expect(w!.greynoise.stats.requests).toBe(24);
      expect(p3).toMatchObject({ greynoise_requests: 24, greynoise_answers: 12, greynoise_local_answers: 2, greynoise_failed: 0 });
      const cached = await store!.db.query<{ cache_key: string }>("SELECT cache_key FROM enrichment_cache WHERE service = 'greynoise'");
      expect(cached.map((c) => c.cache_key).sort()).toEqual([...v4].sort());
    });
  });
}
