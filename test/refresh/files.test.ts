/**
 * `--files N`: VirusTotal verdicts for downloaded files against the simulator — 200, 404, 429
 * (rate and daily quota), 500, 401 — with the rate never exceeded and retries scheduled right.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startWorkClaims } from '../../src/enrich/claims.js';
import { refreshFiles, type FileRefreshOptions } from '../../src/enrich/file-refresh.js';
import { MemoryLogger } from '../../src/log.js';
import { virusTotalKnows, virusTotalReport } from '../../src/sim/virustotal-sim.js';
import { StatusEmitter } from '../../src/status/emitter.js';
import { readJson } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { utcDay } from '../../src/store/time.js';
import { dialectCases } from '../helpers/dialects.js';
import { buildWorld, expectInOrder, logLines, maxInWindow, VT_KEY, type World } from '../helpers/world.js';

interface FileRow {
  shasum: string; session_id: string; enrichment_status: string; enrichment: unknown; vt_malicious: number | null; vt_suspicious: number | null;
  vt_harmless: number | null; vt_undetected: number | null; vt_label: string | null; vt_last_analysis_at: string | null; enrichment_updated_at: string | null;
}

const files = (store: Store) => store.db.query<FileRow>(
  'SELECT shasum, session_id, enrichment_status, enrichment, vt_malicious, vt_suspicious, vt_harmless, vt_undetected, vt_label, vt_last_analysis_at, enrichment_updated_at FROM files ORDER BY shasum, session_id');

const distinct = (rows: FileRow[]) => [...new Set(rows.map((r) => r.shasum))];

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] refresh --files: VirusTotal`, () => {
    let w: World | null = null;
    let store: Store | null = null;
    afterEach(async () => {
      await w?.close(); // closes the stores it opened too
      w = null;
    });

    /** refreshFiles in-process, with a one-second window so rate behaviour shows in seconds. */
    function run(extra: Partial<FileRefreshOptions['virustotal']> = {}, limit: number | null = null) {
      const logger = new MemoryLogger();
      const claims = startWorkClaims(store!.db, { leaseSeconds: 60, logger });
      const p = refreshFiles(store!, {
        limit, commitInterval: 5, offline: false, logger, status: new StatusEmitter({}), claims,
        virustotal: { url: w!.virustotal.url, apiKey: VT_KEY, ratePerMinute: 1000, dailyQuota: 500, windowMs: 1000, backoffMs: 50, ...extra },
      }).finally(() => claims.close());
      return p.then((res) => ({ res, lines: logger.lines }));
    }

    it('200 and 404 through the CLI: enriched with vt_* columns, or unknown; every row of a hash; nothing due after', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 500, ips: 150 });
      store = await w.open();
      const hashes = distinct(await files(store));
      expect(hashes.length).toBeGreaterThan(15);
      const r = await w.refresh(['--files', 'all', '--commit-interval', '10', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      expectInOrder(logLines(r.stderr), [
        `[INFO] [files] Processing ${hashes.length} files for re-enrichment...`,
        '[INFO] [files] committed 10 rows...',
        `[INFO] [files] ${hashes.length} files updated`,
        `[INFO] Refresh complete: 0 sessions, ${hashes.length} files, 0 IPs updated`,
      ]);
      expect(w.virustotal.stats.hashesRequested.sort()).toEqual([...hashes].sort());
      for (const f of await files(store)) {
        const e = readJson<{ virustotal: Record<string, unknown> }>(f.enrichment)!;
        if (!virusTotalKnows(f.shasum, w.seed)) {
          expect(f.enrichment_status).toBe('unknown');
          expect(e.virustotal).toMatchObject({ found: false });
          expect(f.vt_malicious).toBeNull();
          continue;
        }
        // The simulator dates its analyses relative to the request's arrival.
        const asked = w.virustotal.stats.log.find((e) => e.key === f.shasum)!.time;
        const a = virusTotalReport(f.shasum, w.seed, asked).attributes as Record<string, any>;
        expect(f.enrichment_status).toBe('enriched');
        expect([f.vt_malicious, f.vt_suspicious, f.vt_harmless, f.vt_undetected].map(Number)).toEqual([
          a.last_analysis_stats.malicious, a.last_analysis_stats.suspicious, a.last_analysis_stats.harmless, a.last_analysis_stats.undetected]);
        expect(f.vt_label).toBe(a.popular_threat_classification?.suggested_threat_label ?? null);
        expect(f.vt_last_analysis_at).toBe(new Date(a.last_analysis_date * 1000).toISOString().replace('Z', '000Z'));
        expect(e.virustotal).toMatchObject({ sha256: f.shasum, meaningful_name: a.meaningful_name, last_analysis_stats: a.last_analysis_stats });
        expect(e.virustotal).not.toHaveProperty('last_analysis_results');
      }
      // Fresh verdicts are not due again; an unknown older than a day and an old verdict are.
      const again = await w.refresh(['--files', 'all', '--verbose']);
      expect(logLines(again.stderr)).toContain('[INFO] [files] Processing 0 files for re-enrichment...');
      const unknown = hashes.find((h) => !virusTotalKnows(h, w!.seed))!;
      const known = hashes.find((h) => virusTotalKnows(h, w!.seed))!;
      const back = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString().replace('Z', '000Z');
      await store.db.run('UPDATE files SET enrichment_updated_at = ? WHERE shasum = ?', [back(2), unknown]);
      await store.db.run('UPDATE files SET enrichment_updated_at = ? WHERE shasum = ?', [back(31), known]);
      await store.db.run("UPDATE enrichment_cache SET expires_at = ? WHERE service = 'virustotal' AND cache_key IN (?, ?)", [back(1), unknown, known]);
      const before = w.virustotal.stats.requests;
      const third = await w.refresh(['--files', 'all', '--verbose']);
      expect(logLines(third.stderr)).toContain('[INFO] [files] Processing 2 files for re-enrichment...');
      expect(w.virustotal.stats.hashesRequested.slice(before).sort()).toEqual([unknown, known].sort());
    });

    it('never exceeds the rate: at most N requests in any window, no 429 from a server with the same limit', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 300, ips: 100, virustotal: { ratePerMinute: 6, rateWindowMs: 1000 } });
      store = await w.open();
      const n = distinct(await files(store)).length;
      expect(n).toBeGreaterThan(12);
      const { res } = await run({ ratePerMinute: 6 });
      expect(res).toMatchObject({ selected: n, updated: n, failed: 0, pending: 0, requests: n });
      expect(w.virustotal.stats.byStatus[429]).toBeUndefined();
      expect(maxInWindow(w.virustotal.stats.requestTimes, 1000)).toBeLessThanOrEqual(6);
    });

    it('500: retried, then failed (status only, the old verdict kept) and due next run', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 300, ips: 100 });
      store = await w.open();
      const hashes = distinct(await files(store));
      const bad = hashes.filter((h) => virusTotalKnows(h, w!.seed)).slice(0, 2);
      w.virustotal.setOptions({ faults: { failKeys: bad } });
      const { res, lines } = await run();
      expect(res.failed).toBe(2);
      expect(lines).toContain('[INFO] [files] 2 lookups failed and will be retried next run');
      // 1 try + 2 retries each.
      expect(w.virustotal.stats.hashesRequested.filter((h) => bad.includes(h))).toHaveLength(6);
      for (const f of await files(store)) if (bad.includes(f.shasum)) expect([f.enrichment_status, f.vt_malicious]).toEqual(['failed', null]);
      w.virustotal.setOptions({ faults: {} });
      const before = w.virustotal.stats.requests;
      const second = await run();
      expect(second.res).toMatchObject({ selected: 2, failed: 0, enriched: 2 });
      expect(w.virustotal.stats.hashesRequested.slice(before).sort()).toEqual([...bad].sort());

      // A later failure keeps the verdict readable: only the status changes.
      await store.db.run("UPDATE files SET enrichment_updated_at = '2000-01-01T00:00:00.000000Z' WHERE shasum = ?", [bad[0]]);
      await store.db.run("DELETE FROM enrichment_cache WHERE service = 'virustotal' AND cache_key = ?", [bad[0]]);
      const kept = (await files(store)).find((f) => f.shasum === bad[0])!;
      w.virustotal.setOptions({ faults: { failKeys: [bad[0]] } });
      await run();
      const now = (await files(store)).find((f) => f.shasum === bad[0])!;
      expect(now.enrichment_status).toBe('failed');
      expect([now.vt_malicious, now.vt_label, now.enrichment]).toEqual([kept.vt_malicious, kept.vt_label, kept.enrichment]);
    });

    it('429 QuotaExceededError: stop for the day, the rest left pending, the day marked spent', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 300, ips: 100, virustotal: { dailyQuota: 5 } });
      store = await w.open();
      const n = distinct(await files(store)).length;
      const { res, lines } = await run({}, null);
      expect(res.enriched + res.unknown).toBe(5);
      expect(res.pending).toBe(n - 5);
      expect(lines).toContain(`[WARNING] [files] VirusTotal daily quota spent: ${n - 5} files stay pending until tomorrow (UTC)`);
      const [q] = await store.db.query<{ used: number }>("SELECT used FROM api_quota WHERE service = 'virustotal' AND day = ?", [utcDay()]);
      expect(Number(q.used)).toBe(500);
      const statuses = (await files(store)).map((f) => f.enrichment_status);
      expect(statuses.filter((s) => s === 'pending').length).toBeGreaterThanOrEqual(n - 5);
      // Same day, another run: no request at all.
      const before = w.virustotal.stats.requests;
      await run();
      expect(w.virustotal.stats.requests).toBe(before);
    });

    it('401 through the CLI: one error line, files left pending, exit 1', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 300, ips: 100 });
      store = await w.open();
      const r = await w.refresh(['--files', 'all', '--verbose'], { env: { VT_API_KEY: 'bad-vt-key' } });
      expect(r.code, r.stderr).toBe(1);
      const errs = r.stderr.split('\n').filter((l) => /VirusTotal|401|error/i.test(l) && !l.startsWith('[INFO]'));
      expect(errs).toEqual([
        '[ERROR] VirusTotal rejected the API key (HTTP 401 WrongCredentialsError); VirusTotal is off for the rest of this run',
        'cowrie-enrich: error: source failed for the whole run: virustotal (the rest was enriched; affected items stay pending)',
      ]);
      expect(r.stderr).not.toContain('bad-vt-key');
      expect(w.virustotal.stats.requests).toBeLessThanOrEqual(4);
      expect((await files(store)).every((f) => f.enrichment_status === 'pending')).toBe(true);
      // No key at all: one INFO line, skipped, exit 0.
      const none = await w.refresh(['--files', 'all', '--verbose'], { env: { VT_API_KEY: '' } });
      expect(none.code).toBe(0);
      expect(none.stderr.split('\n').filter((l) => /VT_API_KEY|VirusTotal/.test(l))).toEqual(['[INFO] [files] VT_API_KEY is not set: VirusTotal lookups skipped']);
    });
  });
}
