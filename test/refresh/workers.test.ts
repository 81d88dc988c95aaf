/**
 * Refresh workers sharing one database (docs/SCALING.md): each takes a disjoint set of IPs with a
 * lease, renewed while it works; a killed worker's IPs go to the next run; no GreyNoise answer is
 * paid for twice. *
 * The limits hold for all of them together: GreyNoise's rate is never exceeded at the simulator
 * whatever the number of workers, at most 2 Team Cymru connections are open at once across them,
 * and a killed worker's connection slot is free again once its lease ends (workers given their
 * own IPs with --ip, so no two ask about the same one).
 */
import type { ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { claimItems } from '../../src/store/claim-repo.js';
import type { Store } from '../../src/store/store.js';
import { dialectCases } from '../helpers/dialects.js';
import { buildWorld, insertIps, logLines, maxInWindow, publicIps, startRefresh, waitFor, type RunningRefresh, type World } from '../helpers/world.js';


const count = async (store: Store, sql: string, params: unknown[] = []) => Number((await store.db.query<{ n: string }>(sql, params))[0].n);
const dupes = (xs: string[]) => [...new Set(xs.filter((x, i) => xs.indexOf(x) !== i))];
const enrichedIn = (stderr: string) => Number(/Pass 3 complete: ([\d,]+) IPs enriched/.exec(stderr)?.[1].replace(/,/g, '') ?? NaN);
const NETWORKS = [23, 45, 61, 89, 130, 185, 201, 203, 212, 217];
const GN_RATE = 20;

const ipFlags = (ips: string[]) => ips.flatMap((ip) => ['--ip', ip]);
const chunks = <T>(xs: T[], n: number): T[][] => Array.from({ length: n }, (_, k) => xs.filter((_, i) => i % n === k));

const answered = async (store: Store, source: string, ips: string[]) => {
  const rows = await store.db.query<{ cache_key: string }>('SELECT cache_key FROM enrichment_cache WHERE service = ?', [source]);
  const got = new Set(rows.map((r) => r.cache_key));
  return ips.filter((ip) => got.has(ip)).length;
};


for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] refresh workers sharing one database`, () => {
    let w: World | null = null;
    let store: Store | null = null;
    const children: ChildProcess[] = [];
    afterEach(async () => {
      for (const c of children.splice(0)) c.kill('SIGKILL');
      await store?.close();
      await w?.close();
      store = null;
      w = null;
    });

    it('three workers take disjoint IPs; one is killed and restarted: every IP enriched, one GreyNoise request per IP', async () => {
      const ips = publicIps(3000, { firstOctets: NETWORKS, seed: 7 });
      // The simulator refuses (429) beyond the shared rate: a breach shows as well as counts.
      w = await buildWorld({ url: await d.newUrl(), seed: 7, maxmind: 'city', greynoise: { ratePerSecond: 150 } });
      store = await w.open();
      await insertIps(store, ips);
      const gn = w.greynoise.stats;
      const args = ['--ips', '1000', '--commit-interval', '50', '--greynoise-rate', '150', '--verbose'];
      const workers = [startRefresh(w, args), startRefresh(w, args), startRefresh(w, args)];
      children.push(...workers.map((x) => x.child));
      const [victim, ...others] = workers;
      // Kill the first worker once it has committed twice, at a moment when every GreyNoise answer
      // sent for its IPs is in the cache and none of its requests is in flight.
      await waitFor(() => (victim.stderr().match(/\[ips\] committed \d+ rows/g) ?? []).length >= 2, 60_000, 'two commits');
      const held = new Set((await store.db.query<{ item: string }>(
        "SELECT item FROM work_claims WHERE kind = 'ip' AND substr(holder, 1, ?) = ?", [hostPrefix(victim).length, hostPrefix(victim)],
      )).map((r) => r.item));
      expect(held.size).toBeGreaterThan(0);
      await waitFor(async () => {
        const cached = await count(store!, "SELECT count(*) AS n FROM enrichment_cache WHERE service = 'greynoise'");
        const asked = gn.ipsRequested.filter((ip) => held.has(ip)).length;
        const answered = gn.log.filter((e) => e.key !== undefined && held.has(e.key)).length;
        const answeredAll = gn.log.filter((e) => e.status === 200 || e.status === 404).length;
        // cached ≥ every answer sent (all workers): nothing answered is still on its way to a cache.
        if (asked !== answered || cached < answeredAll) return false;
        victim.child.kill('SIGKILL');
        return true;
      }, 30_000, 'a quiet moment for the first worker');
      await victim.exited;
      for (const o of others) expect(await o.exited, o.stderr().slice(-3000)).toBe(0);
      const left = await count(store, "SELECT count(*) AS n FROM work_claims WHERE kind = 'ip'");
      expect(left).toBeGreaterThan(0); // the killed worker's claims, still within their lease

      // The restarted worker takes over the dead worker's claims at once (same machine, no such process).
      const again = await w.refresh(['--ips', '0', '--commit-interval', '50', '--greynoise-rate', '150', '--verbose'], { timeoutMs: 120_000 });
      expect(again.code, again.stderr.slice(-3000)).toBe(0);
      expect(logLines(again.stderr).join('\n')).toMatch(/\[INFO\] Took over \d+ claimed items of a worker that is no longer running/);
      // Disjoint: the two survivors enriched 1000 each, the killed worker and its successor the rest.
      const victimCommitted = 1000 - enrichedIn(again.stderr);
      for (const o of others) expect(enrichedIn(o.stderr())).toBe(1000);
      expect(victimCommitted).toBeGreaterThanOrEqual(100);
      expect(await count(store, 'SELECT count(*) AS n FROM ip_inventory WHERE enrichment_updated_at IS NOT NULL AND enrichment_pending IS NULL')).toBe(3000);
      expect(dupes(gn.ipsRequested)).toEqual([]);
      expect(new Set(gn.ipsRequested)).toEqual(new Set(ips));
      expect(await count(store, 'SELECT count(*) AS n FROM work_claims')).toBe(0);
      // The limits held for all the workers together: GreyNoise's rate (150/s is for all of them)
      // and Team Cymru's two connections.
      expect(maxInWindow(gn.requestTimes, 1000)).toBeLessThanOrEqual(150);
      expect(gn.byStatus[429] ?? 0).toBe(0);
      expect(w.cymru.stats.maxConcurrent).toBeLessThanOrEqual(2);
      expect(w.cymru.stats.connections).toBeGreaterThanOrEqual(6); // every worker asked Cymru (1000 IPs: 2 batches each)
    });

    it("IPs another worker holds are left to it (one line says so) until its lease runs out; then they are taken over", async () => {
      const ips = publicIps(60, { firstOctets: NETWORKS, seed: 7, perNetwork: 10 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7 });
      store = await w.open();
      await insertIps(store, ips);
      // A worker on another machine holds 20 of them (its liveness is judged by the lease alone).
      const theirs = ips.slice(0, 20);
      expect((await claimItems(store.db, 'ip', 'sensor-b.example:4242:abcdef', 600_000, theirs)).size).toBe(20);
      const r = await w.refresh(['--ips', '0', '--offline', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      const lines = logLines(r.stderr);
      expect(lines).toContain('[INFO] Found 40 IPs to enrich');
      expect(lines).toContain('[INFO] 20 IPs due are being enriched by another worker (sensor-b.example:4242:abcdef); left to it');
      const untouched = await store.db.query<{ ip_address: string }>('SELECT ip_address FROM ip_inventory WHERE enrichment_updated_at IS NULL ORDER BY ip_address');
      expect(untouched.map((x) => x.ip_address)).toEqual([...theirs].sort());
      // Its lease runs out (it died without a word): the next run takes its IPs.
      await store.db.run("UPDATE work_claims SET expires_ms = 0 WHERE holder = 'sensor-b.example:4242:abcdef'");
      const after = await w.refresh(['--ips', '0', '--offline', '--verbose']);
      expect(after.code, after.stderr).toBe(0);
      expect(logLines(after.stderr)).toContain('[INFO] Found 20 IPs to enrich');
      expect(await count(store, 'SELECT count(*) AS n FROM ip_inventory WHERE enrichment_updated_at IS NULL')).toBe(0);
      expect(await count(store, 'SELECT count(*) AS n FROM work_claims')).toBe(0);
    });

    it('file hashes another worker holds are not asked of VirusTotal; they are once its lease runs out', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 300, ips: 80, seed: 7 });
      store = await w.open();
      const hashes = (await store.db.query<{ shasum: string }>('SELECT DISTINCT shasum FROM files ORDER BY shasum')).map((r) => r.shasum);
      expect(hashes.length).toBeGreaterThan(4);
      const theirs = hashes.slice(0, 3);
      await claimItems(store.db, 'file', 'sensor-b.example:4242:abcdef', 600_000, theirs);
      const r = await w.refresh(['--files', 'all', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      expect(logLines(r.stderr)).toContain(`[INFO] [files] Processing ${hashes.length - 3} files for re-enrichment...`);
      expect(logLines(r.stderr)).toContain('[INFO] [files] 3 files due are being looked up by another worker (sensor-b.example:4242:abcdef); left to it');
      expect(w.virustotal.stats.hashesRequested.sort()).toEqual(hashes.slice(3));
      await store.db.run("UPDATE work_claims SET expires_ms = 0 WHERE holder = 'sensor-b.example:4242:abcdef'");
      const after = await w.refresh(['--files', 'all', '--verbose']);
      expect(after.code, after.stderr).toBe(0);
      expect(w.virustotal.stats.hashesRequested.sort()).toEqual([...hashes].sort());
      expect(await count(store, 'SELECT count(*) AS n FROM work_claims')).toBe(0);
    });

    it('a working worker renews its lease: a second worker started after the lease length still leaves its IPs alone', async () => {
      const ips = publicIps(40, { firstOctets: NETWORKS, seed: 7, perNetwork: 10 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7 });
      store = await w.open();
      await insertIps(store, ips);
      const gn = w.greynoise.stats;
      // 40 IPs at 4 GreyNoise requests a second: about ten seconds of work on a five-second lease.
      const first = startRefresh(w, ['--ips', '0', '--lease-seconds', '5', '--greynoise-rate', '4', '--commit-interval', '10', '--verbose']);
      children.push(first.child);
      await waitFor(() => /\[ips\] committed 10 rows/.test(first.stderr()), 30_000, 'a first commit');
      const started = Date.now();
      await waitFor(() => Date.now() - started > 6000, 10_000, 'more than one lease');
      expect(first.child.exitCode).toBeNull(); // still working
      const second = await w.refresh(['--ips', '0', '--lease-seconds', '5', '--verbose']);
      expect(second.code, second.stderr).toBe(0);
      expect(logLines(second.stderr).join('\n')).toMatch(/\[INFO\] \d+ IPs due are being enriched by another worker \(.+\); left to it/);
      expect(await first.exited, first.stderr()).toBe(0);
      expect(dupes(gn.ipsRequested)).toEqual([]);
      expect(await count(store, 'SELECT count(*) AS n FROM ip_inventory WHERE enrichment_updated_at IS NULL')).toBe(0);
    });

    it('three workers asking GreyNoise at once: never more than its rate in any second at the simulator, every IP asked once', async () => {
      const ips = publicIps(120, { firstOctets: [23, 45, 61, 89, 130, 185], seed: 7, perNetwork: 5 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7, greynoise: { ratePerSecond: GN_RATE } });
      store = await w.open();
      await insertIps(store, ips);
      const runs = chunks(ips, 3).map((mine) => startRefresh(w!, ['--sources', 'greynoise', '--greynoise-rate', String(GN_RATE), ...ipFlags(mine)]));
      children.push(...runs.map((r) => r.child));
      const codes = await Promise.all(runs.map((r) => r.exited));
      codes.forEach((code, i) => expect(code, runs[i].stderr().slice(-2000)).toBe(0));
      const gn = w.greynoise.stats;
      expect(gn.requests).toBe(ips.length);
      expect(gn.byStatus[429] ?? 0).toBe(0);
      expect(maxInWindow(gn.requestTimes, 1000)).toBeLessThanOrEqual(GN_RATE);
      expect(await answered(store, 'greynoise', ips)).toBe(ips.length);
      // Each worker left the rate: its row stays only for the grace, then expires.
      const rows = await store.db.query<{ holder: string }>("SELECT holder FROM rate_shares WHERE service = 'greynoise'");
      expect(rows).toHaveLength(3);
    });

    it('three workers doing Cymru batches at once: at most 2 connections open at any moment, every IP answered', async () => {
      const ips = publicIps(180, { firstOctets: [23, 45, 61, 89, 130, 185], seed: 7, perNetwork: 6 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7, cymru: { latencyMsPerBatch: 150 } });
      store = await w.open();
      await insertIps(store, ips);
      const runs = chunks(ips, 3).map((mine) => startRefresh(w!, ['--sources', 'cymru', '--cymru-batch-size', '10', ...ipFlags(mine)]));
      children.push(...runs.map((r) => r.child));
      const codes = await Promise.all(runs.map((r) => r.exited));
      codes.forEach((code, i) => expect(code, runs[i].stderr().slice(-2000)).toBe(0));
      const cymru = w.cymru.stats;
      // Six batches each, plus their ASN-details lookups: each worker alone would open two at once.
      expect(cymru.batches).toBeGreaterThanOrEqual(18);
      expect(cymru.maxConcurrent).toBeLessThanOrEqual(2);
      expect(await answered(store, 'cymru', ips)).toBe(ips.length);
      const held = await store.db.query("SELECT slot FROM connection_slots WHERE service = 'cymru' AND holder IS NOT NULL");
      expect(held).toEqual([]);
    });

    it('a worker killed (kill -9) while holding Cymru connections: another gets them once their lease has ended', async () => {
      const ips = publicIps(40, { firstOctets: [23, 45, 61], seed: 7, perNetwork: 5 });
      const [stuck, mine] = [ips.slice(0, 20), ips.slice(20)];
      // The first worker's lines are never answered: it holds its connections until killed.
      w = await buildWorld({ url: await d.newUrl(), seed: 7, cymru: { faults: { stallOnLines: stuck } } });
      store = await w.open();
      await insertIps(store, ips);
      const killed = startRefresh(w, ['--sources', 'cymru', '--cymru-batch-size', '10', '--cymru-timeout', '2', ...ipFlags(stuck)]);
      children.push(killed.child);
      const taken = () => store!.db.query<{ holder: string; expires_ms: string | number }>("SELECT holder, expires_ms FROM connection_slots WHERE service = 'cymru' AND holder IS NOT NULL");
      await waitFor(async () => (await taken()).length === 2, 30_000, 'both Cymru slots taken by the first worker');
      killed.child.kill('SIGKILL');
      await killed.exited;
      const leases = await taken();
      expect(leases.every((r) => r.holder.includes(`:${killed.child.pid}:`))).toBe(true);
      const leaseEnd = Math.min(...leases.map((r) => Number(r.expires_ms)));
      const before = w.cymru.stats.servedTimes.length;
      const next = startRefresh(w, ['--sources', 'cymru', '--cymru-batch-size', '10', ...ipFlags(mine)]);
      children.push(next.child);
      expect(await next.exited, next.stderr().slice(-2000)).toBe(0);
      expect(await answered(store, 'cymru', mine)).toBe(mine.length);
      // The second worker connected only once a lease of the killed one had ended (one clock: this machine's).
      const served = w.cymru.stats.servedTimes.slice(before);
      expect(served.length).toBeGreaterThan(0);
      expect(Math.min(...served)).toBeGreaterThanOrEqual(leaseEnd);
    });
  });
}

/** `host:pid:` of a worker started here: the start of its claims' holder name. */
function hostPrefix(x: RunningRefresh): string {
  return `${hostname().slice(0, 64)}:${x.child.pid}:`;
}
