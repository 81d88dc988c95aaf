/**
 * The standard cases every HTTP IP source passes against its simulator, on each database: hits
 * and misses land in `enrichment.<name>` and in session snapshots; a rejected credential turns the
 * source off (exit 1) with its IPs pending; 429 with Retry-After is waited out; a spent daily
 * quota stops it for the day (exit 0, a warning) with the rest pending; an outage stops it after
 * N failures in a row; answers are cached within the TTL; `--sources` enables and disables it.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { refresh, type Limit } from '../../src/enrich/refresh.js';
import { MemoryLogger } from '../../src/log.js';
import type { SimFaults } from '../../src/sim/http-util.js';
import { StatusEmitter } from '../../src/status/emitter.js';
import { readJson } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { dialectCases } from './dialects.js';
import { buildWorld, insertIps, publicIps, type World } from './world.js';

export interface SimUnderTest {
  url: string;
  stats: { requests: number; ipsRequested: string[]; byStatus: Record<number, number> };
  setOptions(o: Record<string, unknown>): void;
  close(): Promise<void>;
}

export interface SimStartOptions {
  seed: number;
  ratePerSecond?: number;
  dailyQuota?: number;
  throttleRetryAfterSeconds?: number;
  faults?: SimFaults;
}

export interface IpSourceCase {
  name: string;
  title: string;
  start(o: SimStartOptions): Promise<SimUnderTest>;
  /** Settings (flag names) that point the source at the simulator and enable it. */
  settings(url: string): Record<string, unknown>;
  env?: Record<string, string>;
  /** Settings or env that make the simulator reject the credential (401/403). */
  rejected: { settings?: Record<string, unknown>; env?: Record<string, string>; start?: (o: SimStartOptions) => Promise<SimUnderTest> };
  /** How the daily quota is spent in the test: our own count in the database, or the server's answer. */
  quota: Array<{ how: string; settings?: Record<string, unknown>; sim?: Partial<SimStartOptions> }>;
  /** Checks the stored sub-object against what the simulator answers for `ip`. */
  expectStored(ip: string, stored: Record<string, unknown>, seed: number): void;
  /** Whether the simulator knows something about `ip` (a hit), else a miss. */
  knows(ip: string, seed: number): boolean;
  /** The source is enabled without being named in --sources (default on once configured). */
  defaultOn: boolean;
}

const SEED = 7;

/** A real HTTP server on 127.0.0.1 that refuses every request (403 with `body`): a source whose credential is rejected. */
export async function refusingServer(body: string): Promise<SimUnderTest> {
  const stats = { requests: 0, ipsRequested: [] as string[], byStatus: { 403: 0 } as Record<number, number> };
  const server = createServer((_req, res) => {
    stats.requests++;
    stats.byStatus[403]++;
    res.writeHead(403, { 'Content-Type': 'text/plain' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stats, setOptions: () => {},
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export function ipSourceSuite(c: IpSourceCase): void {
  for (const d of dialectCases()) {
    describe.skipIf(d.skip)(`[${d.name}] ${c.title} source`, () => {
      let w: World | null = null;
      let sim: SimUnderTest | null = null;
      afterEach(async () => {
        await sim?.close();
        await w?.close();
        sim = null;
        w = null;
      });

      async function setup(n: number, simOptions: Partial<SimStartOptions> = {}, sessions = 0, start = c.start): Promise<{ store: Store; ips: string[] }> {
        w = await buildWorld({ url: await d.newUrl(), seed: SEED, sessions, ips: sessions ? Math.ceil(sessions / 3) : undefined });
        sim = await start({ seed: SEED, ...simOptions });
        const store = await w.open();
        const ips = publicIps(n, { firstOctets: [23, 45, 61, 89], seed: SEED, perNetwork: 4 });
        await insertIps(store, [...ips, '10.0.0.5']);
        return { store, ips };
      }

      async function run(store: Store, o: { settings?: Record<string, unknown>; env?: Record<string, string>; sources?: string; sessions?: Limit } = {}) {
        const config = resolveConfig({
          db: w!.url, maxmindDir: w!.mmdbDir, commitInterval: 7, cymruHost: w!.cymru.host, cymruPort: w!.cymru.port, greynoiseUrl: w!.greynoise.url,
          greynoiseRate: 200, sources: o.sources ?? `maxmind,${c.name}`, ...c.settings(sim!.url), ...o.settings,
        }, { ...c.env, ...o.env }, {});
        const logger = new MemoryLogger();
        const r = await refresh(store, { sessions: o.sessions ?? 'skip', files: 'skip', ips: 'all', ipList: [], config, logger, status: new StatusEmitter({}) });
        return { r, lines: logger.lines };
      }

      const rows = async (store: Store) => new Map((await store.db.query<{ ip_address: string; enrichment: unknown; enrichment_pending: string | null }>(
        'SELECT ip_address, enrichment, enrichment_pending FROM ip_inventory')).map((x) => [x.ip_address, { e: readJson<Record<string, Record<string, unknown>>>(x.enrichment) ?? {}, pending: x.enrichment_pending }]));

      it('hits and misses land in enrichment.<name> and in session snapshots; private addresses are never sent', async () => {
        const { store, ips } = await setup(24, {}, 60);
        const { r, lines } = await run(store, { sessions: 'all' });
        expect(r.failedSources, lines.join('\n')).toEqual([]);
        expect(sim!.stats.ipsRequested).not.toContain('10.0.0.5');
        const got = await rows(store);
        for (const ip of ips) expect(got.get(ip)!.e[c.name], ip).toBeDefined();
        // Every public address of the database (the loaded logs' too) was asked once.
        const asked = [...got].filter(([, row]) => row.e.scope === undefined);
        let hits = 0;
        for (const [ip, row] of asked) {
          expect(row.pending, ip).toBeNull();
          c.expectStored(ip, row.e[c.name], SEED);
          if (c.knows(ip, SEED)) hits++;
        }
        expect(hits).toBeGreaterThan(0);
        expect(hits).toBeLessThan(asked.length);
        expect(got.get('10.0.0.5')!.e).toEqual({ scope: 'private' });
        expect(r.ips!.counters[c.name]).toMatchObject({ answers: asked.length, hits, misses: asked.length - hits, failed: 0 });
        // Sessions of the loaded logs carry the source's answer in their snapshot.
        const snaps = await store.db.query<{ enrichment: unknown }>('SELECT enrichment FROM session_summaries WHERE enrichment_at IS NOT NULL');
        const withSource = snaps.filter((s) => readJson<Record<string, unknown>>(s.enrichment)?.[c.name] !== undefined);
        expect(withSource.length).toBeGreaterThan(0);
      });

      it('answers are cached within the TTL: a second run asks nothing', async () => {
        const { store, ips } = await setup(10);
        await run(store);
        const asked = sim!.stats.requests;
        expect(asked).toBe(ips.length);
        await store.db.run('UPDATE ip_inventory SET enrichment_updated_at = ?', ['2000-01-01T00:00:00.000000Z']);
        const { r } = await run(store);
        expect(sim!.stats.requests).toBe(asked);
        expect(r.ips!.counters[c.name].cacheHits).toBe(ips.length);
        expect(r.ips!.enriched).toBe(ips.length);
      });

      it('a rejected credential: one error line, the source off for the run (exit 1), its IPs pending', async () => {
        const { store, ips } = await setup(12, {}, 0, c.rejected.start ?? c.start);
        const { r, lines } = await run(store, { settings: c.rejected.settings, env: c.rejected.env });
        expect(r.failedSources).toEqual([c.name]);
        expect(lines.filter((l) => l.startsWith('[ERROR]') && l.includes(`${c.title} rejected`))).toHaveLength(1);
        expect(sim!.stats.requests).toBeLessThanOrEqual(4);
        const got = await rows(store);
        for (const ip of ips) expect(got.get(ip)!.pending).toBe(c.name);
        expect(r.ips!.pending + r.ips!.errors).toBe(ips.length);
      });

      it('429 with Retry-After is waited out and every IP answered', async () => {
        const { store, ips } = await setup(8, { ratePerSecond: 2 });
        const { r, lines } = await run(store, { settings: { [`${c.name}Rate`]: 50 } });
        expect(r.failedSources, lines.join('\n')).toEqual([]);
        expect(sim!.stats.byStatus[429]).toBeGreaterThan(0);
        expect(r.ips!.enriched).toBe(ips.length);
      });

      for (const q of c.quota) it(`a spent daily quota (${q.how}) stops the source for the day (exit 0, a warning), the rest pending for the next run`, async () => {
        const { store, ips } = await setup(10, q.sim ?? {});
        const { r, lines } = await run(store, { settings: q.settings });
        expect(r.failedSources).toEqual([]);
        expect(lines.filter((l) => l.startsWith('[WARNING]') && l.includes(`${c.title} daily quota spent`))).toHaveLength(1);
        const got = await rows(store);
        const owed = ips.filter((ip) => got.get(ip)!.pending === c.name);
        expect(owed.length).toBeGreaterThan(0);
        expect(owed.length).toBeLessThan(ips.length);
        for (const ip of ips) if (!owed.includes(ip)) expect(got.get(ip)!.e[c.name]).toBeDefined();
        // The next day (quota lifted): only the owed IPs are asked, and answered.
        await store.db.run('DELETE FROM api_quota');
        sim!.setOptions({ dailyQuota: undefined, faults: undefined, throttleRetryAfterSeconds: undefined });
        const before = sim!.stats.ipsRequested.length;
        const again = await run(store);
        expect(again.r.failedSources).toEqual([]);
        expect(new Set(sim!.stats.ipsRequested.slice(before))).toEqual(new Set(owed));
        const after = await rows(store);
        for (const ip of ips) expect(after.get(ip)!.pending).toBeNull();
      });

      it('an outage: stops after 10 failures in a row (exit 1), the rest pending; the next run finishes', async () => {
        const { store, ips } = await setup(30, { faults: { error500Rate: 1 } });
        const { r, lines } = await run(store, { settings: { [`${c.name}Rate`]: 100 } });
        expect(r.failedSources).toEqual([c.name]);
        expect(lines.some((l) => l.startsWith('[ERROR]') && l.includes(`${c.title} failed for 10 IPs in a row`))).toBe(true);
        const got = await rows(store);
        for (const ip of ips) expect(got.get(ip)!.pending).toBe(c.name);
        // Fewer IPs than the run had were tried: the stop saved the rest (each tried 4 times).
        expect(new Set(sim!.stats.ipsRequested).size).toBeLessThan(ips.length);
        sim!.setOptions({ faults: undefined });
        const again = await run(store, { settings: { [`${c.name}Rate`]: 100 } });
        expect(again.r.failedSources).toEqual([]);
        expect(again.r.ips!.enriched).toBe(ips.length);
      });

      it('--sources enables and disables it', async () => {
        const { store, ips } = await setup(6);
        const without = await run(store, { sources: 'maxmind' });
        expect(sim!.stats.requests).toBe(0);
        expect(without.r.ips!.enriched).toBe(ips.length);
        for (const [, row] of await rows(store)) {
          expect(row.e[c.name]).toBeUndefined();
          expect(row.pending).toBeNull();
        }
        await store.db.run('UPDATE ip_inventory SET enrichment_updated_at = ?', ['2000-01-01T00:00:00.000000Z']);
        // Without --sources: on by default (once configured) or not.
        const config = resolveConfig({ sources: undefined }, {}, {});
        expect(config.sources.includes(c.name)).toBe(c.defaultOn);
        await run(store, { sources: `${c.name},maxmind` });
        expect(sim!.stats.requests).toBe(ips.length);
        for (const ip of ips) expect((await rows(store)).get(ip)!.e[c.name]).toBeDefined();
      });
    });
  }
}
