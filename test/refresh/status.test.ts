/**
 * The status emitter during a refresh: pass 3 reports every 10 IPs with rate, ETA, cache hits and
 * GreyNoise quota left; Ctrl-C (SIGINT) ends the run cleanly with an `aborted` status and exit 130.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { refresh } from '../../src/enrich/refresh.js';
import { MemoryLogger } from '../../src/log.js';
import { StatusEmitter, type UpdateOptions } from '../../src/status/emitter.js';
import type { Store } from '../../src/store/store.js';
import { ROOT } from '../helpers/cli.js';
import { dialectCases } from '../helpers/dialects.js';
import { buildWorld, GN_KEY, insertIps, publicIps, readJsonFile, waitFor, type World } from '../helpers/world.js';

class RecordingEmitter extends StatusEmitter {
  readonly seen: Array<{ phase: string; fields: Record<string, unknown> }> = [];
  override update(phase: string, fields: Record<string, unknown>, opts?: UpdateOptions): boolean {
    this.seen.push({ phase, fields });
    return super.update(phase, fields, opts);
  }
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] refresh status files`, () => {
    let w: World | null = null;
    let store: Store | null = null;
    afterEach(async () => {
      await w?.close(); // closes the stores it opened too
      w = null;
    });

    it('pass 3 reports every 10 IPs, with rate, ETA, cache hits and the GreyNoise quota left', async () => {
      const ips = publicIps(60, { firstOctets: [23, 45, 61, 89], seed: 7, perNetwork: 5 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7 });
      store = await w.open();
      await insertIps(store, ips);
      const config = resolveConfig({
        db: w.url, maxmindDir: w.mmdbDir, statusDir: w.statusDir, commitInterval: 50, greynoiseRate: 30, greynoiseDailyQuota: 1000,
        cymruHost: w.cymru.host, cymruPort: w.cymru.port, greynoiseUrl: w.greynoise.url,
      }, { GREYNOISE_API_KEY: GN_KEY }, {});
      const status = new RecordingEmitter({ dir: w.statusDir, minIntervalMs: 1000 });
      const logger = new MemoryLogger();
      const r = await refresh(store, { sessions: 'skip', files: 'skip', ips: 'all', ipList: [], config, logger, status });
      status.finish('complete');
      expect(r.ips!.enriched).toBe(60);
      const p3 = status.seen.filter((s) => s.phase === 'pass_3_merge');
      const counts = [...new Set(p3.map((s) => s.fields.ips_processed))];
      expect(counts).toEqual([10, 20, 30, 40, 50, 60]);
      for (const s of p3) {
        expect(s.fields).toMatchObject({ ips_total: 60, ip_errors: 0 });
        expect(typeof s.fields.rate_per_second).toBe('number');
        expect(typeof s.fields.eta_seconds).toBe('number');
        expect(s.fields.cache_hits).toEqual({ cymru: 0, greynoise: 0 });
      }
      const final = readJsonFile(path.join(w.statusDir, 'pass_3_merge.json'));
      expect(final).toMatchObject({ phase: 'pass_3_merge', ips_processed: 60, ips_total: 60, ip_errors: 0, greynoise_requests: 60, greynoise_quota_left: 940, eta_seconds: 0, state: 'complete' });
    });

    it('SIGINT in pass 3: stops after the current commit, status "aborted", exit 130; the next run finishes', async () => {
      const ips = publicIps(60, { firstOctets: [23, 45, 61, 89], seed: 7, perNetwork: 5 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7 });
      store = await w.open();
      await insertIps(store, ips);
      const child = spawn(path.join(ROOT, 'bin', 'cowrie-enrich'), ['refresh', ...w.flags(), '--ips', '0', '--commit-interval', '10', '--greynoise-rate', '10', '--verbose'],
        { cwd: w.dir, env: { ...process.env, ...w.env() }, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b) => (err += b));
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      await waitFor(() => err.includes('[ips] committed 10 rows...'), 20_000, 'the first commit');
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(err).toMatch(/SIGINT: stopping after the current batch/);
      expect(err).toMatch(/cowrie-enrich: error: interrupted after \d+ IPs were committed; run again to continue/);
      const committed = Number(/interrupted after (\d+) IPs/.exec(err)![1]);
      expect(committed).toBeGreaterThanOrEqual(10);
      expect(committed).toBeLessThan(60);
      const all = readJsonFile<{ phase: string; state: string }>(path.join(w.statusDir, 'status.json'));
      expect(all).toMatchObject({ phase: 'pass_3_merge', state: 'aborted' });
      expect(readJsonFile(path.join(w.statusDir, 'pass_3_merge.json'))).toMatchObject({ ips_processed: committed, state: 'aborted' });
      const [n] = await store.db.query<{ n: string }>('SELECT count(*) AS n FROM ip_inventory WHERE enrichment_updated_at IS NOT NULL');
      expect(Number(n.n)).toBe(committed);
      // IPs of the last commit whose GreyNoise lookup was not sent any more stay pending.
      const [done] = await store.db.query<{ n: string }>('SELECT count(*) AS n FROM ip_inventory WHERE enrichment_updated_at IS NOT NULL AND enrichment_pending IS NULL');
      expect(Number(done.n)).toBeGreaterThanOrEqual(committed - 10);

      const again = await w.refresh(['--ips', '0', '--greynoise-rate', '200', '--verbose']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain(`[INFO] Found ${60 - Number(done.n)} IPs to enrich`);
      // Answers received before the interruption were cached: nothing is asked twice.
      const asked = w.greynoise.stats.ipsRequested;
      expect(asked.filter((ip, i) => asked.indexOf(ip) !== i)).toEqual([]);
    });
  });
}
