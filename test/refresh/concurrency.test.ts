/**
 * Several processes on one database: refreshes beside refreshes and beside a loader finish without
 * "database is locked" (SQLite) or "deadlock detected" (PostgreSQL). And a paid answer is in
 * enrichment_cache before the run counts or uses it.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AnswerBuffer } from '../../src/enrich/answer-buffer.js';
import { generateLogs } from '../../src/sim/log-generator.js';
import { openStore, type Store } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { dialectCases } from '../helpers/dialects.js';
import { buildWorld, type World } from '../helpers/world.js';

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] concurrent processes`, () => {
    let w: World | null = null;
    let store: Store | null = null;
    afterEach(async () => {
      await store?.close();
      await w?.close();
      store = null;
      w = null;
    });

    it('a paid answer is committed to enrichment_cache before add() resolves (a crash cannot re-pay what was counted)', async () => {
      store = await openStore(await d.newUrl());
      const buffer = new AnswerBuffer(store.db, 'greynoise');
      const fetchedAt = new Date().toISOString();
      await buffer.add({ key: '23.1.2.3', status: 'hit', value: { observed: true }, fetchedAt, ttlSeconds: 3600 });
      const rows = await store.db.query<{ cache_key: string }>("SELECT cache_key FROM enrichment_cache WHERE service = 'greynoise'");
      expect(rows.map((r) => r.cache_key)).toEqual(['23.1.2.3']);
      // Answers arriving together share one write, and each add() waits for the write that holds it.
      await Promise.all(['23.1.2.4', '23.1.2.5', '23.1.2.6'].map((ip) => buffer.add({ key: ip, status: 'miss', value: null, fetchedAt, ttlSeconds: 3600 })));
      const n = await store.db.query<{ n: string }>("SELECT count(*) AS n FROM enrichment_cache WHERE service = 'greynoise'");
      expect(Number(n[0].n)).toBe(4);
      // Local answers and failures are not paid for: never cached.
      await buffer.add({ key: '2a02::1', status: 'miss', value: null, fetchedAt, ttlSeconds: 3600, local: true });
      await buffer.add({ key: '23.1.2.7', status: 'error', value: null, fetchedAt, ttlSeconds: 0 });
      expect(Number((await store.db.query<{ n: string }>('SELECT count(*) AS n FROM enrichment_cache'))[0].n)).toBe(4);
    });

    it('refreshes beside refreshes and a loader: every process exits 0, no lock or deadlock error', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 300, ips: 120, seed: 7 });
      // More logs for the loader to write while the refreshes run (new sessions of the same IPs and new ones).
      const more = path.join(w.dir, 'more-logs');
      await generateLogs({ outDir: more, sessions: 600, ips: 200, sensors: 2, days: 2, seed: 11 });
      const env = { ...w.env() };
      // Small commits and every IP stale each round: the processes overlap on the same rows and ASNs.
      const refresh = () => w!.refresh(['--ips', '0', '--sessions', 'all', '--stale-days', '0', '--commit-interval', '10', '--verbose']);
      const loader = () => runCli('cowrie-loader', ['bulk', '--db', w!.url, '--batch-size', '200', '-q', more], { env, cwd: w!.dir });
      for (let round = 0; round < 2; round++) {
        const results = await Promise.all([refresh(), refresh(), loader()]);
        for (const r of results) {
          expect(r.stderr).not.toMatch(/database is locked|deadlock detected|could not serialize/);
          expect(r.code, r.stderr.slice(-2000)).toBe(0);
        }
      }
      store = await w.open();
      // The loader's and the refreshes' work all landed: every IP enriched, ASN counts exact.
      const unenriched = await store.db.query('SELECT ip_address FROM ip_inventory WHERE enrichment_updated_at IS NULL');
      expect(unenriched).toEqual([]);
      const off = await store.db.query(`SELECT a.asn_number FROM asn_inventory a
        LEFT JOIN (SELECT current_asn, count(*) AS n FROM ip_inventory WHERE current_asn IS NOT NULL GROUP BY current_asn) i ON i.current_asn = a.asn_number
        WHERE a.unique_ip_count <> coalesce(i.n, 0)`);
      expect(off).toEqual([]);
    });
  });
}

const pg = dialectCases().find((c) => c.name === 'postgres')!;
describe.skipIf(pg.skip)('[postgres] a deadlock between two transactions', () => {
  it('is retried transparently: both transactions commit', async () => {
    const url = await pg.newUrl();
    const [a, b] = [await openStore(url), await openStore(url)];
    try {
      await a.db.run("INSERT INTO asn_inventory (asn_number, organization_name, unique_ip_count, total_session_count) VALUES (1, 'one', 0, 0), (2, 'two', 0, 0)");
      // Each takes its first row, waits until the other has too, then asks for the other's row:
      // a deadlock on the first attempt; PostgreSQL rolls one back, and the retry goes through.
      let firstDone = 0;
      const bothHaveOne = async () => {
        firstDone++;
        while (firstDone < 2) await new Promise((r) => setTimeout(r, 10));
      };
      const bump = (db: Store['db'], order: number[]) => db.transaction(async (tx) => {
        await tx.run('UPDATE asn_inventory SET unique_ip_count = unique_ip_count + 1 WHERE asn_number = ?', [order[0]]);
        await bothHaveOne();
        await tx.run('UPDATE asn_inventory SET unique_ip_count = unique_ip_count + 1 WHERE asn_number = ?', [order[1]]);
      });
      await Promise.all([bump(a.db, [1, 2]), bump(b.db, [2, 1])]);
      const rows = await a.db.query<{ asn_number: number; unique_ip_count: number }>('SELECT asn_number, unique_ip_count FROM asn_inventory ORDER BY asn_number');
      expect(rows.map((r) => Number(r.unique_ip_count))).toEqual([2, 2]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
