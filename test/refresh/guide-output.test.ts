/**
 * The user guide's example commands, pointed at the simulators, print the guide's lines in
 * the guide's order (with this world's real numbers) and write its status JSON.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fmt } from '../../src/log.js';
import { worldNetwork } from '../../src/sim/world.js';
import { readJson } from '../../src/store/schema.js';
import { dialectCases } from '../helpers/dialects.js';
import { buildWorld, expectInOrder, insertIps, logLines, maxmindHasAsn, publicIps, readJsonFile, type World } from '../helpers/world.js';

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] the guide's example commands`, () => {
    let w: World | null = null;
    afterEach(async () => {
      await w?.close();
      w = null;
    });

    it('Small Batch: --sessions 0 --files 0 --ips 100 --verbose', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 400, ips: 130 });
      const r = await w.refresh(['--sessions', '0', '--files', '0', '--ips', '100', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      const store = await w.open();
      try {
        const rows = await store.db.query<{ ip_address: string }>('SELECT ip_address FROM ip_inventory WHERE enrichment_updated_at IS NOT NULL');
        expect(rows).toHaveLength(100);
        const need = rows.filter((x) => !maxmindHasAsn(x.ip_address, w!.seed)).length;
        expect(need).toBeGreaterThan(0);
        const lines = logLines(r.stderr);
        expectInOrder(lines, [
          '[INFO] Refresh command started with limits: sessions=0, files=0, ips=100',
          '[INFO] Pass 1/3: MaxMind GeoIP enrichment (offline)...',
          `[INFO] Pass 1 complete: ${need} IPs need Cymru ASN enrichment`,
          `[INFO] Pass 2/3: Cymru ASN enrichment (${need} IPs, batched)...`,
          `[INFO] Cymru batch 1/1: ${need} IPs enriched`,
          `[INFO] Pass 2 complete: ${need} IPs enriched via Cymru`,
          '[INFO] Pass 3/3: Merging results and GreyNoise enrichment...',
          '[INFO] [ips] committed 100 rows...',
          '[INFO] Pass 3 complete: 100 IPs enriched, 0 errors',
          '[INFO] Refresh complete: 0 sessions, 0 files, 100 IPs updated',
        ]);
        expect(r.stderr).not.toMatch(/DNS timeout/);
        expect(lines.filter((l) => /^\[(WARNING|ERROR)\]/.test(l))).toEqual([]);
        // One bulk connection for the IPs (and one for the new ASNs' details), never a query per IP.
        expect(w.cymru.stats.batchSizes[0]).toBe(need);

        // The status files: one per phase plus status.json, kept with the final figures.
        const p3 = readJsonFile(path.join(w.statusDir, 'pass_3_merge.json'));
        expect(p3).toMatchObject({ phase: 'pass_3_merge', ips_processed: 100, ips_total: 100, ip_errors: 0 });
        expect(p3.timestamp).toMatch(TIMESTAMP);
        expect(readJsonFile(path.join(w.statusDir, 'pass_1_maxmind.json'))).toMatchObject({ phase: 'pass_1_maxmind', ips_processed: 100, ips_total: 100, ip_errors: 0 });
        expect(readJsonFile(path.join(w.statusDir, 'pass_2_cymru.json'))).toMatchObject({ phase: 'pass_2_cymru', ips_processed: need, ips_total: need, ip_errors: 0 });
        const all = readJsonFile<{ phase: string; state: string; timestamp: string; phases: Record<string, Record<string, unknown>> }>(path.join(w.statusDir, 'status.json'));
        expect(all).toMatchObject({ phase: 'pass_3_merge', state: 'complete' });
        expect(all.timestamp).toMatch(TIMESTAMP);
        expect(all.phases.pass_3_merge).toMatchObject({ phase: 'pass_3_merge', ips_processed: 100, ips_total: 100, ip_errors: 0 });
        expect(fs.readdirSync(w.statusDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

        if (d.name === 'postgres') {
          // The guide's verification query, exactly as printed.
          const got = await store.db.query<{ ip_address: string; current_asn: number | null; enrichment_updated_at: string; asn_name: string | null }>(`SELECT
    ip_address,
    current_asn,
    enrichment_updated_at,
    enrichment->'cymru'->>'as_name' as asn_name
FROM ip_inventory
WHERE enrichment_updated_at >= NOW() - INTERVAL '1 hour'
ORDER BY enrichment_updated_at DESC
LIMIT 10;`);
          expect(got).toHaveLength(10);
          for (const row of got) {
            const net = worldNetwork(row.ip_address, w.seed);
            // Cymru was asked only where MaxMind had no ASN; its AS name is then the world's.
            expect(row.asn_name).toBe(maxmindHasAsn(row.ip_address, w.seed) ? null : net.as?.name ?? null);
            expect(row.current_asn).toBe(net.as?.asn ?? null);
            expect(Date.parse(row.enrichment_updated_at)).toBeGreaterThan(Date.now() - 3_600_000);
          }
        }
      } finally {
        await store.close();
      }
    });

    it('Large Batch, scaled down: --commit-interval 100, nine Cymru batches, three IPs failing', async () => {
      const url = await d.newUrl();
      w = await buildWorld({ url, seed: 7 });
      // 433 of 500 IPs unknown to the MaxMind ASN database (the guide's 4,327 of 5,000, over ten);
      // batches of 50 give the guide's 9 batches (the guide's 500 over ten).
      const noAsn = publicIps(433, { firstOctets: [23, 31, 45, 61, 77, 89, 101, 113, 130, 147, 163, 185, 201], seed: 7, maxmindAsn: false, perNetwork: 12 });
      const withAsn = publicIps(67, { firstOctets: [52, 66, 81], seed: 7, maxmindAsn: true, perNetwork: 12 });
      const failing = [noAsn[10], noAsn[200], withAsn[5]];
      w.greynoise.setOptions({ faults: { failIps: failing } });
      const store = await w.open();
      await insertIps(store, [...noAsn, ...withAsn]);
      await store.close();
      const r = await w.refresh(['--sessions', '0', '--files', '0', '--ips', '500', '--commit-interval', '100', '--cymru-batch-size', '50', '--greynoise-rate', '1000', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      const lines = logLines(r.stderr);
      expectInOrder(lines, [
        '[INFO] Pass 1/3: MaxMind GeoIP enrichment (offline)...',
        '[INFO] Pass 1 complete: 433 IPs need Cymru ASN enrichment',
        '[INFO] Pass 2/3: Cymru ASN enrichment (433 IPs, batched)...',
        '[INFO] Cymru batch 1/9: 50 IPs enriched',
        '[INFO] Cymru batch 2/9: 50 IPs enriched',
        ...[3, 4, 5, 6, 7, 8].map((i) => `[INFO] Cymru batch ${i}/9: 50 IPs enriched`),
        '[INFO] Cymru batch 9/9: 33 IPs enriched',
        '[INFO] Pass 2 complete: 433 IPs enriched via Cymru',
        '[INFO] Pass 3/3: Merging results and GreyNoise enrichment...',
        ...[1, 2, 3, 4, 5].map((i) => `[INFO] [ips] committed ${i * 100} rows...`),
        // The three IPs GreyNoise failed for are errors, not enriched.
        '[INFO] Pass 3 complete: 497 IPs enriched, 3 errors',
        '[INFO] Refresh complete: 0 sessions, 0 files, 497 IPs updated',
      ]);
      expect(r.stderr).not.toMatch(/DNS timeout/);
      expect(w.cymru.stats.batchSizes.slice(0, 9)).toEqual([50, 50, 50, 50, 50, 50, 50, 50, 33]);
      // The three failures stay pending for the next run, which asks GreyNoise about them alone.
      const s2 = await w.open();
      try {
        const pending = await s2.db.query<{ ip_address: string; enrichment_pending: string }>('SELECT ip_address, enrichment_pending FROM ip_inventory WHERE enrichment_pending IS NOT NULL ORDER BY ip_address');
        expect(pending).toEqual(failing.sort().map((ip) => ({ ip_address: ip, enrichment_pending: 'greynoise' })));
        const status = readJsonFile(path.join(w.statusDir, 'pass_3_merge.json'));
        expect(status).toMatchObject({ phase: 'pass_3_merge', ips_processed: 500, ips_total: 500, ip_errors: 3 });
      } finally {
        await s2.close();
      }
      w.greynoise.setOptions({ faults: {} });
      const before = w.greynoise.stats.ipsRequested.length;
      const again = await w.refresh(['--ips', '0', '--verbose']);
      expect(again.code, again.stderr).toBe(0);
      expect(logLines(again.stderr)).toContain('[INFO] Found 3 IPs to enrich');
      expect(logLines(again.stderr)).toContain('[INFO] Pass 3 complete: 3 IPs enriched, 0 errors');
      expect(w.greynoise.stats.ipsRequested.slice(before).sort()).toEqual([...failing].sort());
    });

    it('Refresh All Stale IPs: --ips 0, then nothing left, then only what went stale', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 300, ips: 90 });
      const total = w.logs!.uniqueIps;
      const r = await w.refresh(['--sessions', '0', '--files', '0', '--ips', '0', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      const store = await w.open();
      try {
        const ips = (await store.db.query<{ ip_address: string }>('SELECT ip_address FROM ip_inventory')).map((x) => x.ip_address);
        expect(ips).toHaveLength(total);
        const need = ips.filter((ip) => !maxmindHasAsn(ip, w!.seed)).length;
        expectInOrder(logLines(r.stderr), [
          '[INFO] Querying IPs needing enrichment (>30 days stale)...',
          `[INFO] Found ${fmt(total)} IPs to enrich`,
          '[INFO] Pass 1/3: MaxMind GeoIP enrichment (offline)...',
          `[INFO] Pass 1 complete: ${fmt(need)} IPs need Cymru ASN enrichment`,
          `[INFO] Pass 2/3: Cymru ASN enrichment (${fmt(need)} IPs, batched)...`,
          `[INFO] Cymru batch 1/1: ${fmt(need)} IPs enriched`,
          `[INFO] Pass 2 complete: ${fmt(need)} IPs enriched via Cymru`,
          '[INFO] Pass 3/3: Merging results and GreyNoise enrichment...',
          `[INFO] Pass 3 complete: ${fmt(total)} IPs enriched, 0 errors`,
        ]);

        const none = await w.refresh(['--sessions', '0', '--files', '0', '--ips', '0', '--verbose']);
        expect(none.code, none.stderr).toBe(0);
        expectInOrder(logLines(none.stderr), ['[INFO] Found 0 IPs to enrich', '[INFO] No IPs found to enrich', '[INFO] Refresh complete: 0 sessions, 0 files, 0 IPs updated']);
        expect(none.stderr).not.toMatch(/Pass 1/);

        // Set 7 IPs 31 days back (SQL): exactly those come back.
        const old = new Date(Date.now() - 31 * 86_400_000).toISOString().replace('Z', '000Z');
        const stale = ips.slice(0, 7);
        await store.db.run(`UPDATE ip_inventory SET enrichment_updated_at = ? WHERE ip_address IN (${stale.map(() => '?').join(',')})`, [old, ...stale]);
        const some = await w.refresh(['--ips', '0', '--verbose']);
        expect(some.code, some.stderr).toBe(0);
        expect(logLines(some.stderr)).toContain('[INFO] Found 7 IPs to enrich');
        expect(logLines(some.stderr)).toContain('[INFO] Pass 3 complete: 7 IPs enriched, 0 errors');
      } finally {
        await store.close();
      }
    });

    it('Refresh All Data Types, scaled down: --sessions 100 --files 20 --ips 200 --commit-interval 50', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 700, ips: 260 });
      // A database that was enriched once, then aged: IPs stale, caches expired, new sessions unsnapshotted.
      const first = await w.refresh(['--ips', '0']);
      expect(first.code, first.stderr).toBe(0);
      const store = await w.open();
      try {
        const old = new Date(Date.now() - 40 * 86_400_000).toISOString().replace('Z', '000Z');
        await store.db.run('UPDATE ip_inventory SET enrichment_updated_at = ?', [old]);
        await store.db.run('DELETE FROM enrichment_cache');
        await store.db.run('UPDATE session_summaries SET enrichment = NULL, enrichment_at = NULL, snapshot_asn = NULL, snapshot_country = NULL, snapshot_classification = NULL');
        const files = Number((await store.db.query<{ n: string }>('SELECT count(DISTINCT shasum) AS n FROM files'))[0].n);
        expect(files).toBeGreaterThanOrEqual(20);
        const ipTotal = w.logs!.uniqueIps;
        expect(ipTotal).toBeGreaterThanOrEqual(200);

        const r = await w.refresh(['--sessions', '100', '--files', '20', '--ips', '200', '--commit-interval', '50', '--verbose']);
        expect(r.code, r.stderr).toBe(0);
        const enriched = (await store.db.query<{ ip_address: string }>('SELECT ip_address FROM ip_inventory WHERE enrichment_updated_at > ?', [old])).map((x) => x.ip_address);
        expect(enriched).toHaveLength(200);
        const need = enriched.filter((ip) => !maxmindHasAsn(ip, w!.seed)).length;
        const lines = logLines(r.stderr);
        expectInOrder(lines, [
          '[INFO] Refresh command started with limits: sessions=100, files=20, ips=200',
          '[INFO] [sessions] Processing 100 sessions for re-enrichment...',
          '[INFO] [sessions] committed 50 rows...',
          '[INFO] [sessions] committed 100 rows...',
          '[INFO] [sessions] 100 sessions updated',
          '[INFO] [files] Processing 20 files for re-enrichment...',
          '[INFO] [files] 20 files updated',
          '[INFO] [ips] Processing 200 IPs for re-enrichment...',
          '[INFO] Pass 1/3: MaxMind GeoIP enrichment (offline)...',
          `[INFO] Pass 1 complete: ${fmt(need)} IPs need Cymru ASN enrichment`,
          `[INFO] Pass 2/3: Cymru ASN enrichment (${fmt(need)} IPs, batched)...`,
          `[INFO] Cymru batch 1/1: ${fmt(need)} IPs enriched`,
          '[INFO] Pass 3/3: Merging results and GreyNoise enrichment...',
          '[INFO] [ips] committed 50 rows...',
          '[INFO] [ips] committed 200 rows...',
          '[INFO] Pass 3 complete: 200 IPs enriched, 0 errors',
          '[INFO] Refresh complete: 100 sessions, 20 files, 200 IPs updated',
        ]);
        expect(r.stderr).not.toMatch(/DNS timeout/);
        // All three kinds were updated.
        const snap = await store.db.query<{ n: string }>('SELECT count(*) AS n FROM session_summaries WHERE enrichment_at IS NOT NULL');
        expect(Number(snap[0].n)).toBe(100);
        const vt = await store.db.query<{ n: string }>("SELECT count(DISTINCT shasum) AS n FROM files WHERE enrichment_status IN ('enriched', 'unknown')");
        expect(Number(vt[0].n)).toBe(20);
        const status = readJsonFile(path.join(w.statusDir, 'status.json'));
        expect(status).toMatchObject({ phase: 'pass_3_merge', state: 'complete' });
        const sessionsStatus = readJsonFile(path.join(w.statusDir, 'sessions.json'));
        expect(sessionsStatus).toMatchObject({ phase: 'sessions', sessions_processed: 100 });
        // --sessions 100 caps the run: the step took 100, so no catch-up after the IP passes.
        expect(lines.some((l) => /more sessions snapshotted from IPs enriched in this run/.test(l))).toBe(false);
        const [one] = await store.db.query<{ enrichment: unknown }>('SELECT enrichment FROM session_summaries WHERE enrichment_at IS NOT NULL LIMIT 1');
        expect(readJson<Record<string, unknown>>(one.enrichment)).toHaveProperty('maxmind');
      } finally {
        await store.close();
      }
    });
  });
}
