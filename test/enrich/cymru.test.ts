import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CYMRU_HIT_TTL_SECONDS, CYMRU_MISS_TTL_SECONDS, CYMRU_VERSION, createCymruClient,
} from '../../src/enrich/sources/cymru.js';
import type { CymruBatchInfo, CymruClientOptions } from '../../src/enrich/sources/cymru.js';
import { MemoryLogger } from '../../src/log.js';
import { startCymruSim } from '../../src/sim/cymru-sim.js';
import type { CymruSim, CymruSimOptions } from '../../src/sim/cymru-sim.js';
import { isPrivateIpv4, worldAs, worldNetwork } from '../../src/sim/world.js';

let sim: CymruSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(o: CymruSimOptions = {}): Promise<CymruSim> {
  sim = await startCymruSim(o);
  return sim;
}

const client = (s: { port: number }, o: Partial<CymruClientOptions> = {}) =>
  createCymruClient({ host: '127.0.0.1', port: s.port, backoffBaseMs: 2, ...o });

/** n distinct public IPv4 addresses spread over many /16 networks. */
function publicIps(n: number, offset = 0): string[] {
  const out: string[] = [];
  for (let i = offset; out.length < n; i++) {
    const ip = `${11 + (i % 200)}.${Math.floor(i / 200) % 256}.${i % 256}.9`;
    if (!isPrivateIpv4(ip)) out.push(ip);
  }
  return out;
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('Cymru client against the simulator', () => {
  it('splits 1,234 IPs into batches of 500/500/234 on at most 2 connections, results keyed by IP', async () => {
    const s = await start({ seed: 4, latencyMsPerBatch: 40 });
    const ips = publicIps(1234);
    const batches: CymruBatchInfo[] = [];
    const log = new MemoryLogger();
    const res = await client(s).lookupIps(ips, {
      onBatch: (b) => {
        batches.push(b);
        log.info(`Cymru batch ${b.index}/${b.total}: ${b.enriched} IPs enriched`);
      },
    });
    expect([...s.stats.batchSizes].sort()).toEqual([234, 500, 500]);
    expect(s.stats.connections).toBe(3);
    expect(s.stats.maxConcurrent).toBe(2);
    expect(log.lines).toEqual([
      '[INFO] Cymru batch 1/3: 500 IPs enriched',
      '[INFO] Cymru batch 2/3: 500 IPs enriched',
      '[INFO] Cymru batch 3/3: 234 IPs enriched',
    ]);
    expect(batches.every((b) => b.ok && b.error === undefined)).toBe(true);
    expect(res).toMatchObject({ failedBatches: 0, stoppedEarly: false });
    expect(res.results.map((r) => r.key)).toEqual(ips);
    for (const r of res.results) {
      const w = worldNetwork(r.key, 4);
      expect(r.version).toBe(CYMRU_VERSION);
      expect(new Date(r.fetchedAt).toISOString()).toBe(r.fetchedAt);
      if (w.as) {
        expect(r).toMatchObject({ status: 'hit', ttlSeconds: CYMRU_HIT_TTL_SECONDS });
        expect(r.value).toEqual({
          asn: w.as.asn, as_name: w.as.name, prefix: w.prefix, country: w.country, registry: w.registry, allocated: w.allocated || null,
        });
      } else {
        expect(r).toMatchObject({ status: 'miss', ttlSeconds: CYMRU_MISS_TTL_SECONDS });
        expect(r.value).toEqual({ asn: null, as_name: null, prefix: null, country: w.country, registry: w.registry, allocated: w.allocated || null });
      }
    }
    expect(res.results.some((r) => r.status === 'miss')).toBe(true);
  });

  it('maps multi-origin, duplicate, NA, Error: and garbage answers to hit / miss / error', async () => {
    const ips = publicIps(40).filter((ip) => worldNetwork(ip, 1).as !== null).slice(0, 6);
    const [moas, dup, na, err] = ips;
    const s = await start({ faults: { multiOriginIps: [moas], duplicateIps: [dup], naIps: [na], errorIps: [err], garbage: 0.5 } });
    const res = await client(s).lookupIps([...ips, '10.9.9.9', 'not-an-ip', ips[5].toUpperCase()]);
    const by = new Map(res.results.map((r) => [r.key, r]));
    expect(res.results).toHaveLength(8); // the repeated IP is asked once
    expect(by.get(moas)?.value).toMatchObject({ asn: worldNetwork(moas, 1).as!.asn, asns: [worldNetwork(moas, 1).as!.asn, expect.any(Number)] });
    expect(by.get(dup)?.value?.asns).toHaveLength(2);
    expect(by.get(dup)?.value?.as_name).toBe(worldNetwork(dup, 1).as!.name);
    expect(by.get(na)).toMatchObject({ status: 'miss', ttlSeconds: CYMRU_MISS_TTL_SECONDS, value: { asn: null, country: worldNetwork(na, 1).country } });
    expect(by.get(err)).toMatchObject({ status: 'error', value: null, ttlSeconds: 0 });
    expect(by.get('10.9.9.9')).toMatchObject({ status: 'miss', value: { registry: 'other', country: null } });
    expect(by.get('not-an-ip')).toMatchObject({ status: 'error', reason: 'not an IP address' });
    expect(s.stats.batchSizes).toEqual([7]); // the non-IP was never sent
  });

  it('retries a connection dropped mid-answer, re-sending only the unanswered IPs', async () => {
    const s = await start({ faults: { dropFirstN: 1, dropAfterLines: 100 } });
    const ips = publicIps(300);
    const batches: CymruBatchInfo[] = [];
    const res = await client(s).lookupIps(ips, { onBatch: (b) => void batches.push(b) });
    expect(s.stats.batchSizes).toEqual([300, 200]);
    expect(res.results.every((r) => r.status === 'hit' || r.status === 'miss')).toBe(true);
    expect(batches).toMatchObject([{ index: 1, total: 1, ok: true, enriched: 300 }]);
  });

  it('isolates a poisonous line by splitting the rest in half once', async () => {
    const ips = publicIps(10);
    const poison = ips[2];
    const s = await start({ faults: { dropOnLines: [poison] } });
    const batches: CymruBatchInfo[] = [];
    const res = await client(s, { retries: 3 }).lookupIps(ips, { onBatch: (b) => void batches.push(b) });
    // 3 tries (all 10, then the 8 unanswered twice), then halves of 4 and 4.
    expect(s.stats.batchSizes).toEqual([10, 8, 8, 4, 4]);
    const failed = res.results.filter((r) => r.status === 'error').map((r) => r.key);
    expect(failed).toEqual(ips.slice(2, 6));
    expect(res.results.filter((r) => r.status === 'error').every((r) => r.reason?.includes('connection closed'))).toBe(true);
    expect(batches[0]).toMatchObject({ ok: false, enriched: 6 });
    expect(batches[0].error).toMatch(/4 of 10 IPs unanswered$/);
    expect(res).toMatchObject({ failedBatches: 1, stoppedEarly: false });
  });

  it('a dead server (closed port): batches fail, the client stops after 3 in a row, the rest is pending', async () => {
    const port = await closedPort();
    const log = new MemoryLogger();
    const c = createCymruClient({ host: '127.0.0.1', port, batchSize: 10, maxConnections: 1, backoffBaseMs: 1, logger: log });
    const ips = publicIps(60);
    const res = await c.lookupIps(ips, {
      onBatch: (b) => {
        if (!b.ok) log.error(`Cymru batch ${b.index}/${b.total} failed: ${b.error}`);
      },
    });
    expect(res).toMatchObject({ failedBatches: 3, stoppedEarly: true });
    expect(log.lines.filter((l) => l.startsWith('[ERROR]'))).toEqual([1, 2, 3].map((i) => `[ERROR] Cymru batch ${i}/6 failed: connection refused by 127.0.0.1:${port}`));
    expect(res.results.slice(0, 30).every((r) => r.status === 'error' && r.ttlSeconds === 0)).toBe(true);
    expect(res.results.slice(30).every((r) => r.status === 'pending' && r.reason === 'Cymru stopped after 3 failed batches')).toBe(true);
    expect(c.stopped).toBe(true);
    expect(log.lines).toContain('[DEBUG] Cymru stopped after 3 failed batches; not asking Cymru again this run');
  });

  it('a server that closes every connection is contacted no more than the retry budget allows', async () => {
    const s = await start({ faults: { refuse: 1 } });
    const res = await client(s, { batchSize: 10, maxConnections: 1 }).lookupIps(publicIps(100));
    expect(res).toMatchObject({ failedBatches: 3, stoppedEarly: true });
    expect(s.stats.connections).toBe(9); // 3 batches x 3 tries, no split: the server never engaged
    expect(res.results.filter((r) => r.status === 'pending')).toHaveLength(70);

    const s2 = await startCymruSim({ faults: { refuse: 1 } });
    try {
      const c2 = client(s2, { batchSize: 10, maxConnections: 2 });
      await c2.lookupIps(publicIps(100));
      // At most one batch beyond the third can be in flight when the stop comes.
      expect(s2.stats.connections).toBeLessThanOrEqual(12);
      const before = s2.stats.connections;
      expect(await c2.lookupAsns([worldAs(0, 1).asn])).toEqual(new Map());
      expect((await c2.lookupIps(publicIps(5))).results.every((r) => r.status === 'pending')).toBe(true);
      expect(s2.stats.connections).toBe(before);
    } finally {
      await s2.close();
    }
  });

  it('an onBatch that throws ends the run with its error, starting no new batch', async () => {
    const s = await start();
    const c = client(s, { batchSize: 5, maxConnections: 1 });
    await expect(c.lookupIps(publicIps(50), { onBatch: () => Promise.reject(new Error('disk full')) })).rejects.toThrow('disk full');
    expect(s.stats.connections).toBeLessThanOrEqual(2);
  });

  it('a success resets the failure count', async () => {
    const s = await start({ faults: { failFirstN: 2 } });
    // One try per batch: fail, fail, ok, fail, fail, ok. Never 3 failures in a row.
    const oks: boolean[] = [];
    const res = await client(s, { batchSize: 5, maxConnections: 1, retries: 1 }).lookupIps(publicIps(30), {
      onBatch: (b) => {
        oks.push(b.ok);
        if (b.index === 3) s.setFaults({ refuse: 1 });
        if (b.index === 5) s.setFaults({});
      },
    });
    expect(oks).toEqual([false, false, true, false, false, true]);
    expect(res).toMatchObject({ failedBatches: 4, stoppedEarly: false });
    expect(res.results.slice(25).every((r) => r.status === 'hit' || r.status === 'miss')).toBe(true);
  });

  it('a stalled server times out each try; the batch fails with a one-line reason', async () => {
    const s = await start({ faults: { stall: 1 } });
    const res = await client(s, { timeoutMs: 100, retries: 2 }).lookupIps(publicIps(5));
    expect(res.failedBatches).toBe(1);
    expect(s.stats.connections).toBe(2);
    for (const r of res.results) expect(r).toMatchObject({ status: 'error', reason: `Read timeout from 127.0.0.1:${s.port} after 0.1 s` });
  });

  it('a stall part-way keeps the rows already read and splits the rest', async () => {
    const ips = publicIps(6);
    const s = await start({ faults: { stallOnLines: [ips[4]] } });
    const res = await client(s, { timeoutMs: 100, retries: 1 }).lookupIps(ips);
    expect(s.stats.batchSizes).toEqual([6, 1, 1]);
    expect(res.results.map((r) => r.status === 'error')).toEqual([false, false, false, false, true, false]);
  });

  it('looks ASNs up with AS<n> lines and returns the ASN own registration', async () => {
    const s = await start({ seed: 9 });
    const ases = [0, 1, 2, 3, 4].map((i) => worldAs(i, 9));
    const m = await client(s, { batchSize: 2 }).lookupAsns([...ases.map((a) => a.asn), ases[0].asn, 4_294_960_000]);
    expect(s.stats.batchSizes).toEqual([2, 2, 2]);
    expect(m.size).toBe(5);
    for (const a of ases) {
      expect(m.get(a.asn)).toEqual({ asn: a.asn, as_name: a.name, country: a.country, registry: a.registry, allocated: a.allocated });
    }
    expect(m.has(4_294_960_000)).toBe(false);
  });
});
