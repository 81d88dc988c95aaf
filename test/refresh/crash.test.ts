/**
 * kill -9 in the middle of a refresh, then a re-run: every IP and file enriched once, nothing
 * duplicated, nothing lost, and no answer that had reached us paid for twice.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { readJson } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { dialectCases } from '../helpers/dialects.js';
import { buildWorld, insertIps, logLines, publicIps, startRefresh, waitFor, type World } from '../helpers/world.js';


const count = async (store: Store, sql: string, params: unknown[] = []) => Number((await store.db.query<{ n: string }>(sql, params))[0].n);
const dupes = (xs: string[]) => xs.filter((x, i) => xs.indexOf(x) !== i);

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] refresh killed with SIGKILL, then run again`, () => {
    let w: World | null = null;
    let store: Store | null = null;
    let child: ChildProcess | null = null;
    afterEach(async () => {
      child?.kill('SIGKILL');
      await store?.close();
      await w?.close();
      store = null;
      w = null;
      child = null;
    });

    it('IPs: killed in pass 3, the re-run finishes the rest, nothing duplicated, no GreyNoise answer paid twice', async () => {
      const ips = publicIps(90, { firstOctets: [23, 45, 61, 89, 130, 185, 201], seed: 7, perNetwork: 4 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7, greynoise: { latencyMs: 20 } });
      store = await w.open();
      await insertIps(store, ips);
      const gn = w.greynoise.stats;
      const run = startRefresh(w, ['--ips', '0', '--commit-interval', '10', '--greynoise-rate', '8', '--verbose']);
      child = run.child;
      // Kill once pass 3 has committed twice, at a moment when every answer GreyNoise sent has been
      // stored by the refresh (the cache) and no request is in flight.
      await waitFor(() => (run.stderr().match(/\[ips\] committed \d+ rows/g) ?? []).length >= 2, 30_000, 'two commits');
      await waitFor(async () => {
        const answered = (gn.byStatus[200] ?? 0) + (gn.byStatus[404] ?? 0);
        const cached = await count(store!, "SELECT count(*) AS n FROM enrichment_cache WHERE service = 'greynoise'");
        if (cached !== answered || gn.requests !== gn.log.length) return false;
        // Synchronously with the last check: nothing can reach the simulator in between.
        run.child.kill('SIGKILL');
        return true;
      }, 20_000, 'a quiet moment');
      await run.exited;
      const committed = await count(store, 'SELECT count(*) AS n FROM ip_inventory WHERE enrichment_updated_at IS NOT NULL');
      expect(committed).toBeGreaterThanOrEqual(20);
      expect(committed).toBeLessThan(90);
      const asked = gn.ipsRequested.length;
      expect(asked).toBeLessThan(90);

      const again = await w.refresh(['--ips', '0', '--commit-interval', '10', '--verbose']);
      expect(again.code, again.stderr).toBe(0);
      // Only what the killed run had not committed is done again.
      expect(logLines(again.stderr)).toContain(`[INFO] Found ${90 - committed} IPs to enrich`);
      expect(logLines(again.stderr)).toContain(`[INFO] Pass 3 complete: ${90 - committed} IPs enriched, 0 errors`);
      expect(dupes(gn.ipsRequested)).toEqual([]);
      expect(new Set(gn.ipsRequested)).toEqual(new Set(ips));
      expect(await count(store, 'SELECT count(*) AS n FROM ip_inventory')).toBe(90);
      const rows = await store.db.query<{ enrichment: unknown; enrichment_pending: string | null; current_asn: number | null }>('SELECT enrichment, enrichment_pending, current_asn FROM ip_inventory');
      for (const r of rows) {
        expect(r.enrichment_pending).toBeNull();
        expect(Object.keys(readJson<Record<string, unknown>>(r.enrichment)!)).toEqual(expect.arrayContaining(['maxmind', 'greynoise']));
      }
      // ASN counts are recounts, so a repeated merge cannot inflate them.
      const sum = await count(store, 'SELECT coalesce(sum(unique_ip_count), 0) AS n FROM asn_inventory');
      expect(sum).toBe(rows.filter((r) => r.current_asn !== null).length);
      expect(await count(store, "SELECT count(*) AS n FROM enrichment_cache WHERE service = 'greynoise'")).toBe(90);
    });

    it('files: killed between VirusTotal answers, the re-run asks only for the rest', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 400, ips: 120 });
      store = await w.open();
      const hashes = (await store.db.query<{ shasum: string }>('SELECT DISTINCT shasum FROM files')).map((r) => r.shasum);
      expect(hashes.length).toBeGreaterThan(10);
      const vt = w.virustotal.stats;
      // 3 requests a minute: three answers, then a long wait in which to kill it.
      const run = startRefresh(w, ['--files', 'all', '--virustotal-rate', '3', '--commit-interval', '5', '--verbose']);
      child = run.child;
      await waitFor(async () => {
        if (vt.log.length < 3 || vt.requests !== vt.log.length) return false;
        const cached = await count(store!, "SELECT count(*) AS n FROM enrichment_cache WHERE service = 'virustotal'");
        if (cached < 3) return false;
        run.child.kill('SIGKILL');
        return true;
      }, 30_000, 'three answers stored');
      await run.exited;
      expect(vt.hashesRequested).toHaveLength(3);
      // Below the commit interval, so no file row was written yet: the answers live in the cache.
      expect(await count(store, "SELECT count(*) AS n FROM files WHERE enrichment_status <> 'pending'")).toBe(0);

      const again = await w.refresh(['--files', 'all', '--commit-interval', '5', '--verbose']);
      expect(again.code, again.stderr).toBe(0);
      expect(logLines(again.stderr)).toContain(`[INFO] [files] ${hashes.length} files updated`);
      expect(dupes(vt.hashesRequested)).toEqual([]);
      expect(new Set(vt.hashesRequested)).toEqual(new Set(hashes));
      expect(await count(store, "SELECT count(*) AS n FROM files WHERE enrichment_status NOT IN ('enriched', 'unknown')")).toBe(0);
    });
  });
}
