import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { MemoryLogger } from '../../src/log.js';
import { createGreyNoiseClient, GREYNOISE_TTL_SECONDS, isGreyNoiseRoutable } from '../../src/enrich/sources/greynoise.js';
import type { GreyNoiseClientOptions, GreyNoiseValue } from '../../src/enrich/sources/greynoise.js';
import type { SourceResult } from '../../src/enrich/sources/types.js';
import { greyNoiseAnswer, greyNoiseQuick, startGreyNoiseSim } from '../../src/sim/greynoise-sim.js';
import type { GreyNoiseSim, GreyNoiseSimOptions } from '../../src/sim/greynoise-sim.js';
import { MemoryQuota } from '../helpers/memory-quota.js';

const KEY = 'gn_TEST_KEY_7f3a9c';


const sims: GreyNoiseSim[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all([...sims.splice(0).map((s) => s.close()), ...closers.splice(0).map((c) => c())]);
});

async function sim(options: GreyNoiseSimOptions = {}): Promise<GreyNoiseSim> {
  const s = await startGreyNoiseSim({ apiKey: KEY, ...options });
  sims.push(s);
  return s;
}

function client(url: string, extra: Partial<GreyNoiseClientOptions> = {}) {
  const logger = new MemoryLogger();
  const quota = new MemoryQuota();
  const c = createGreyNoiseClient({ url, apiKey: KEY, quota, logger, backoffMs: 10, ...extra });
  return { c, logger, quota };
}

async function collect(
  c: ReturnType<typeof createGreyNoiseClient>,
  ips: string[],
  signal?: AbortSignal,
): Promise<{ results: Map<string, SourceResult<GreyNoiseValue>>; summary: Awaited<ReturnType<typeof c.lookup>> }> {
  const results = new Map<string, SourceResult<GreyNoiseValue>>();
  const summary = await c.lookup(ips, (r) => void results.set(r.key, r), signal);
  return { results, summary };
}

/** Routable IPs whose simulated answer has the given status. */
function ipsWith(status: number, count: number, seed = 1, offset = 0): string[] {
  const out: string[] = [];
  for (let i = offset; out.length < count; i++) {
    const ip = `${23 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.77`;
    if (greyNoiseAnswer(ip, seed).status === status) out.push(ip);
  }
  return out;
}

function expectKeyHidden(...things: unknown[]): void {
  for (const t of things) expect(JSON.stringify(t)).not.toContain(KEY);
}

describe('GreyNoise community client', () => {
  it('keeps the fields of a 200, caches a 404 as not observed, and never sends IPv6 or non-routable addresses', async () => {
    const s = await sim();
    const { c, logger } = client(s.url);
    const [hit] = ipsWith(200, 1);
    const [miss] = ipsWith(404, 1);
    const unsent = ['10.1.2.3', '192.168.0.9', '127.0.0.1', '100.64.3.4', '169.254.1.1', '224.0.0.1', '0.1.2.3', '2001:db8::1', 'nonsense'];
    const { results, summary } = await collect(c, [hit, miss, ...unsent, hit]);

    const body = greyNoiseAnswer(hit, 1).body;
    expect(results.get(hit)).toMatchObject({
      status: 'hit',
      ttlSeconds: GREYNOISE_TTL_SECONDS,
      value: {
        observed: true,
        noise: body.noise,
        riot: body.riot,
        classification: body.classification,
        name: body.name,
        last_seen: body.last_seen,
        link: body.link,
      },
    });
    expect(results.get(miss)).toMatchObject({
      status: 'miss',
      ttlSeconds: GREYNOISE_TTL_SECONDS,
      value: { observed: false, noise: false, riot: false, classification: null },
    });
    for (const ip of unsent) {
      expect(results.get(ip)).toMatchObject({ status: 'miss', value: null, reason: 'not sent: IPv6/non-routable' });
    }
    expect(s.stats.ipsRequested.sort()).toEqual([hit, miss].sort());
    expect(summary).toEqual({ sent: 2, authError: undefined, quotaExhausted: false, pending: 0 });
    expectKeyHidden([...results.values()], logger.lines);
  });

  it('treats a 400 from the server as a cacheable miss', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end('{"message":"Request is not a valid routable IPv4 address"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const { c } = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const { results } = await collect(c, ['45.1.2.3']);
    expect(results.get('45.1.2.3')).toMatchObject({ status: 'miss', value: null, ttlSeconds: GREYNOISE_TTL_SECONDS });
  });

  it('never lets the server see more than ratePerSecond requests in any one-second window, and reports each answer at once', async () => {
    const s = await sim({ ratePerSecond: 50 });
    const { c } = client(s.url, { ratePerSecond: 50 });
    const ips = [...ipsWith(200, 40), ...ipsWith(404, 80)];
    const reportedAt: number[] = [];
    const summary = await c.lookup(ips, () => void reportedAt.push(Date.now()));
    expect(summary.sent).toBe(120);
    expect(reportedAt).toHaveLength(120);
    expect(s.stats.byStatus[429]).toBeUndefined();
    const t = [...s.stats.requestTimes].sort((a, b) => a - b);
    expect(t).toHaveLength(120);
    for (let i = 0; i + 50 < t.length; i++) expect(t[i + 50] - t[i]).toBeGreaterThanOrEqual(1000);
    // Persisting as answers arrive: early answers were reported before the last request went out.
    expect(Math.min(...reportedAt)).toBeLessThan(t[t.length - 1]);
  });

  it('honours Retry-After on a 429, then succeeds', async () => {
    const s = await sim({ ratePerSecond: 2 });
    // Misconfigured on purpose: faster than the server allows.
    const { c } = client(s.url, { ratePerSecond: 20, concurrency: 1 });
    const ips = ipsWith(404, 5);
    const { results, summary } = await collect(c, ips);
    expect([...results.values()].every((r) => r.status === 'miss')).toBe(true);
    expect(summary.pending).toBe(0);
    const throttled = s.stats.log.filter((e) => e.status === 429);
    expect(throttled.length).toBeGreaterThan(0);
    for (const e of throttled) {
      const next = s.stats.requestTimes.find((t) => t > e.time);
      expect(next).toBeDefined();
      expect(next! - e.time).toBeGreaterThanOrEqual(1000);
    }
  });

  it('stops at the first 401: one clear error, GreyNoise off for the run, every IP pending, key never shown', async () => {
    const s = await sim({ apiKey: 'the-right-key' });
    const { c, logger } = client(s.url, { concurrency: 1 });
    const ips = ipsWith(200, 6);
    const { results, summary } = await collect(c, ips);
    expect(summary.authError).toBe('GreyNoise rejected the API key (HTTP 401)');
    expect(summary.pending).toBe(6);
    expect(s.stats.requests).toBe(1);
    expect([...results.values()].every((r) => r.status === 'pending')).toBe(true);
    expect(logger.lines.filter((l) => l.startsWith('[ERROR]'))).toHaveLength(1);
    // Off for the rest of the run: a later call sends nothing.
    const again = await collect(c, ipsWith(404, 2));
    expect(again.summary).toMatchObject({ sent: 0, pending: 2 });
    expect(s.stats.requests).toBe(1);
    expect(logger.lines.filter((l) => l.startsWith('[ERROR]'))).toHaveLength(1);
    expectKeyHidden([...results.values()], logger.lines, summary);
  });

  it('stops when the shared daily quota is spent and leaves the rest pending', async () => {
    const s = await sim();
    const { c, quota, logger } = client(s.url, { concurrency: 4 });
    quota.left = 5;
    const ips = ipsWith(404, 12);
    const { results, summary } = await collect(c, ips);
    expect(s.stats.requests).toBe(5);
    expect(summary).toMatchObject({ sent: 5, quotaExhausted: true, pending: 7 });
    const pending = [...results.values()].filter((r) => r.status === 'pending');
    expect(pending).toHaveLength(7);
    for (const r of pending) expect(r.reason).toBe('GreyNoise daily quota spent');
    expect(await quota.remaining()).toBe(0);
    expect(logger.lines.filter((l) => l.includes('quota'))).toHaveLength(1);
    const again = await collect(c, ipsWith(200, 3));
    expect(again.summary).toMatchObject({ sent: 0, pending: 3, quotaExhausted: true });
  });

  it("treats the server's daily-limit 429 as a spent quota", async () => {
    const s = await sim({ dailyQuota: 3 });
    const { c } = client(s.url, { concurrency: 1 });
    const { results, summary } = await collect(c, ipsWith(404, 8));
    expect(s.stats.requests).toBe(4);
    expect(summary).toMatchObject({ quotaExhausted: true, pending: 5 });
    expect([...results.values()].filter((r) => r.status === 'miss')).toHaveLength(3);
  });

  it('retries 5xx answers: success after passing failures, pending when they persist', async () => {
    const [bad] = ipsWith(200, 1);
    const good = ipsWith(404, 3);
    const s = await sim({ faults: { failIps: [bad] } });
    const { c } = client(s.url, { retries: 2 });
    const { results, summary } = await collect(c, [bad, ...good]);
    expect(s.stats.ipsRequested.filter((ip) => ip === bad)).toHaveLength(3);
    expect(results.get(bad)).toMatchObject({ status: 'pending', ttlSeconds: 0 });
    expect(results.get(bad)!.reason).toContain('HTTP 500');
    expect(summary.pending).toBe(1);
    for (const ip of good) expect(results.get(ip)!.status).toBe('miss');

    const flaky = await sim({ faults: { failTimesPerKey: 2 } });
    const { c: c2 } = client(flaky.url, { retries: 3 });
    const second = await collect(c2, good);
    expect([...second.results.values()].every((r) => r.status === 'miss')).toBe(true);
    expect(flaky.stats.requests).toBe(9);
  });

  it('gives up on timeouts after the retries and leaves the IP pending', async () => {
    const s = await sim({ faults: { timeoutRate: 1 } });
    const { c } = client(s.url, { timeoutMs: 150, retries: 1 });
    const [ip] = ipsWith(200, 1);
    const { results } = await collect(c, [ip]);
    expect(results.get(ip)).toMatchObject({ status: 'pending' });
    expect(results.get(ip)!.reason).toMatch(/timed out/);
    expect(s.stats.requests).toBe(2);
  });

  it('a server that sends headers and then stalls the body is cut off at the timeout', async () => {
    const [stalled, fine] = ipsWith(200, 2);
    const s = await sim({ faults: { stallBodyKeys: [stalled] } });
    const { c } = client(s.url, { timeoutMs: 300, retries: 1 });
    const { results } = await collect(c, [stalled, fine]);
    expect(results.get(fine)!.status).toBe('hit');
    expect(results.get(stalled)).toMatchObject({ status: 'pending' });
    expect(results.get(stalled)!.reason).toBe('GreyNoise: timed out after 0.3 s (gave up after 2 attempts)');
    expect(s.stats.ipsRequested.filter((ip) => ip === stalled)).toHaveLength(2);
  });

  it('Ctrl-C reaches a request whose body stalls', async () => {
    const [stalled] = ipsWith(200, 1);
    const s = await sim({ faults: { stallBodyKeys: [stalled] } });
    const { c } = client(s.url, { timeoutMs: 600_000 });
    const ac = new AbortController();
    const run = c.lookup([stalled], () => {}, ac.signal);
    // Abort once the request is at the server (its headers are on their way back).
    while (s.stats.requests === 0) await new Promise((r) => setTimeout(r, 10));
    setTimeout(() => ac.abort(new Error('interrupted')), 100);
    await expect(run).rejects.toThrow('interrupted');
  });

  it('rejects when the caller aborts, without reporting unfinished IPs', async () => {
    const s = await sim({ latencyMs: 2000 });
    const { c } = client(s.url);
    const ac = new AbortController();
    const seen: string[] = [];
    const run = c.lookup(ipsWith(200, 3), (r) => void seen.push(r.key), ac.signal);
    setTimeout(() => ac.abort(new Error('interrupted')), 100);
    await expect(run).rejects.toThrow('interrupted');
    expect(seen).toEqual([]);
  });

  it('refuses an unusable key without echoing it', () => {
    const bad = 'gn_secret\nvalue';
    let caught: unknown;
    try {
      createGreyNoiseClient({ url: 'http://127.0.0.1:1', apiKey: bad, quota: new MemoryQuota() });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).message).not.toContain('gn_secret');
  });

  it('classifies addresses as routable the way GreyNoise does', () => {
    expect(isGreyNoiseRoutable('8.8.8.8')).toBe(true);
    expect(isGreyNoiseRoutable('100.128.0.1')).toBe(true);
    for (const ip of ['100.127.255.255', '172.31.0.1', '198.51.100.7', '203.0.113.1', '240.0.0.1', '255.255.255.255', '::1', '8.8.8']) {
      expect(isGreyNoiseRoutable(ip)).toBe(false);
    }
  });
});

describe('GreyNoise enterprise client', () => {
  it('sends up to 1,000 IPs per multi quick request, one quota unit each', async () => {
    const s = await sim();
    const { c, quota } = client(s.url, { mode: 'enterprise' });
    quota.left = 10;
    const ips = Array.from({ length: 2500 }, (_, i) => `${31 + (i >> 8)}.${i & 255}.7.9`);
    const { results, summary } = await collect(c, [...ips, '10.0.0.1']);
    expect(s.stats.requests).toBe(3);
    expect(s.stats.byStatus[200]).toBe(3);
    expect(s.stats.ipsRequested).toHaveLength(2500);
    expect(summary).toMatchObject({ sent: 3, pending: 0, quotaExhausted: false });
    expect(quota.left).toBe(7);
    expect(results.get('10.0.0.1')!.status).toBe('miss');
    for (const ip of ips) {
      const q = greyNoiseQuick(ip, 1);
      const r = results.get(ip)!;
      expect(r.status).toBe(q.noise || q.riot ? 'hit' : 'miss');
      expect(r.value).toMatchObject({ observed: q.noise || q.riot, noise: q.noise, riot: q.riot });
    }
  });
});
