/**
 * Several `cowrie-enrich refresh` processes on one database hold the providers' limits together
 * (docs/SCALING.md, "N refresh workers"): GreyNoise's rate is never exceeded at the simulator
 * whatever the number of workers, at most 2 Team Cymru connections are open at once across them,
 * and a killed worker's connection slot is free again once its lease ends. Each worker is given
 * its own IPs (--ip), so no two ask about the same one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { ROOT } from '../helpers/cli.js';
import { dialectCases } from '../helpers/dialects.js';
import { buildWorld, insertIps, maxInWindow, publicIps, waitFor, type World } from '../helpers/world.js';

const GN_RATE = 20;

const ipFlags = (ips: string[]) => ips.flatMap((ip) => ['--ip', ip]);
const chunks = <T>(xs: T[], n: number): T[][] => Array.from({ length: n }, (_, k) => xs.filter((_, i) => i % n === k));

function start(w: World, args: string[]): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(path.join(ROOT, 'bin', 'cowrie-enrich'), ['refresh', ...w.flags(), ...args], { cwd: w.dir, env: { ...process.env, ...w.env() }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b) => (err += b));
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, stderr: () => err, exited };
}

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

    it('three workers asking GreyNoise at once: never more than its rate in any second at the simulator, every IP asked once', async () => {
      const ips = publicIps(120, { firstOctets: [23, 45, 61, 89, 130, 185], seed: 7, perNetwork: 5 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7, greynoise: { ratePerSecond: GN_RATE } });
      store = await w.open();
      await insertIps(store, ips);
      const runs = chunks(ips, 3).map((mine) => start(w!, ['--sources', 'greynoise', '--greynoise-rate', String(GN_RATE), ...ipFlags(mine)]));
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
      const runs = chunks(ips, 3).map((mine) => start(w!, ['--sources', 'cymru', '--cymru-batch-size', '10', ...ipFlags(mine)]));
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
      const killed = start(w, ['--sources', 'cymru', '--cymru-batch-size', '10', '--cymru-timeout', '2', ...ipFlags(stuck)]);
      children.push(killed.child);
      const taken = () => store!.db.query<{ holder: string; expires_ms: string | number }>("SELECT holder, expires_ms FROM connection_slots WHERE service = 'cymru' AND holder IS NOT NULL");
      await waitFor(async () => (await taken()).length === 2, 30_000, 'both Cymru slots taken by the first worker');
      killed.child.kill('SIGKILL');
      await killed.exited;
      const leases = await taken();
      expect(leases.every((r) => r.holder.includes(`:${killed.child.pid}:`))).toBe(true);
      const leaseEnd = Math.min(...leases.map((r) => Number(r.expires_ms)));
      const before = w.cymru.stats.servedTimes.length;
      const next = start(w, ['--sources', 'cymru', '--cymru-batch-size', '10', ...ipFlags(mine)]);
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
