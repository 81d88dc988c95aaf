import { afterEach, describe, expect, it } from 'vitest';
import { MALFORMED_BODY } from '../../src/sim/http-util.js';
import { INVALID_IP_BODY, internetDbAnswer, NO_INFORMATION_BODY, RATE_LIMIT_BODY, startInternetDbSim } from '../../src/sim/internetdb-sim.js';
import type { InternetDbSim, InternetDbSimOptions } from '../../src/sim/internetdb-sim.js';
import { runCli } from '../helpers/cli.js';
import { rawGet, serveCli, stalledGet } from './http-sim-helpers.js';

const sims: InternetDbSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

async function sim(options: InternetDbSimOptions = {}): Promise<InternetDbSim> {
  const s = await startInternetDbSim(options);
  sims.push(s);
  return s;
}

async function get(s: { url: string }, ip: string): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${s.url}/${ip}`);
  return { status: res.status, body: await res.json(), headers: res.headers };
}

function findIp(status: number, seed = 1): string {
  for (let i = 0; ; i++) {
    const ip = `45.${(i >> 8) & 255}.${i & 255}.5`;
    if (internetDbAnswer(ip, seed).status === status) return ip;
  }
}

describe('InternetDB simulator', () => {
  it('answers /{ip} with ports, hostnames, CPEs, tags and CVEs, or 404 No information available', async () => {
    const s = await sim();
    const known = findIp(200);
    const unknown = findIp(404);
    const k = await get(s, known);
    expect(k.status).toBe(200);
    expect(k.body).toEqual(internetDbAnswer(known, 1).body);
    expect(Object.keys(k.body)).toEqual(['cpes', 'hostnames', 'ip', 'ports', 'tags', 'vulns']);
    expect(k.body.ip).toBe(known);
    expect(k.body.ports.length).toBeGreaterThan(0);
    expect(k.body.ports.every((p: unknown) => Number.isInteger(p))).toBe(true);
    expect(k.body.cpes.every((c: string) => c.startsWith('cpe:/'))).toBe(true);
    expect(k.body.vulns.every((v: string) => /^CVE-\d{4}-\d+$/.test(v))).toBe(true);

    expect(await get(s, unknown)).toMatchObject({ status: 404, body: NO_INFORMATION_BODY });
    for (const reserved of ['10.0.0.1', '100.64.1.1', '127.0.0.1', 'fe80::1']) {
      expect(await get(s, reserved)).toMatchObject({ status: 404, body: NO_INFORMATION_BODY });
    }
    expect(await get(s, 'not-an-ip')).toMatchObject({ status: 400, body: INVALID_IP_BODY });
    expect(await get(s, '%zz')).toMatchObject({ status: 400, body: INVALID_IP_BODY });
    expect(s.stats.ipsRequested).toEqual([known, unknown, '10.0.0.1', '100.64.1.1', '127.0.0.1', 'fe80::1', 'not-an-ip', '%zz']);
    expect(s.stats.byStatus).toEqual({ 200: 1, 404: 5, 400: 2 });
  });

  it('is deterministic per seed: ~45% of public IPv4 known, IPv6 rarely', () => {
    const ips = Array.from({ length: 3000 }, (_, i) => `${60 + (i % 90)}.${(i * 7) & 255}.${i & 255}.${(i * 13) & 255}`);
    const a = ips.map((ip) => internetDbAnswer(ip, 1));
    expect(ips.map((ip) => internetDbAnswer(ip, 1))).toEqual(a);
    expect(ips.map((ip) => internetDbAnswer(ip, 2))).not.toEqual(a);
    const known = a.filter((x) => x.status === 200).length / ips.length;
    expect(known).toBeGreaterThan(0.4);
    expect(known).toBeLessThan(0.5);
    const v6 = Array.from({ length: 1000 }, (_, i) => `2a01:${i.toString(16)}::1`).filter((ip) => internetDbAnswer(ip, 1).status === 200).length;
    expect(v6).toBeGreaterThan(0);
    expect(v6).toBeLessThan(100);
  });

  it("answers Shodan's 429 with Retry-After beyond the per-second rate and the daily quota, and counts per IP", async () => {
    const s = await sim({ ratePerSecond: 3 });
    const answers = await Promise.all(Array.from({ length: 5 }, () => get(s, '45.0.0.1')));
    const limited = answers.filter((a) => a.status === 429);
    expect(limited).toHaveLength(2);
    expect(limited[0].body).toEqual(RATE_LIMIT_BODY);
    expect(limited[0].headers.get('retry-after')).toBe('1');
    expect(s.stats.byIp).toEqual(new Map([['45.0.0.1', 5]]));
    expect(s.stats.maxPerSecond).toBeGreaterThanOrEqual(4); // 3 accepted and a refused one shared a second

    const d = await sim({ dailyQuota: 1 });
    expect((await get(d, '45.0.0.1')).status).not.toBe(429);
    const over = await get(d, '45.0.0.2');
    expect(over).toMatchObject({ status: 429, body: RATE_LIMIT_BODY });
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('injects faults: outage 500, throttle 429, malformed JSON, a body that stalls, a dropped connection', async () => {
    const s = await sim({ faults: { error500Rate: 1 } });
    expect((await get(s, '45.0.0.1')).status).toBe(500);
    s.setOptions({ faults: { throttleRate: 1 }, throttleRetryAfterSeconds: 60 });
    const t = await get(s, '45.0.0.1');
    expect(t).toMatchObject({ status: 429, body: RATE_LIMIT_BODY });
    expect(t.headers.get('retry-after')).toBe('60');
    s.setOptions({ faults: { malformedRate: 1 } });
    expect(await rawGet(`${s.url}/45.0.0.2`)).toMatchObject({ status: 200, text: MALFORMED_BODY });
    s.setOptions({ faults: { dropRate: 1 } });
    await expect(fetch(`${s.url}/45.0.0.3`)).rejects.toThrow();
    s.setOptions({ faults: { stallBodyRate: 1 } });
    const stalled = stalledGet(`${s.url}/45.0.0.4`);
    expect((await stalled.started).status).toBe(200);
    await s.close();
    expect(await stalled.finished).toBe('cut');
    expect(s.stats.byStatus).toEqual({ 500: 1, 429: 1, 200: 1 });
    expect(s.stats.requests).toBe(5);
  });
});

describe('cowrie-sim internetdb (needs `npx tsc -p tsconfig.json` first)', () => {
  it('serves until SIGTERM, then prints what it counted', async () => {
    const served = await serveCli(['internetdb', '--port', '0', '--seed', '5', '--rate', '0']);
    const known = findIp(200, 5);
    const unknown = findIp(404, 5);
    expect((await get(served, known)).body).toEqual(internetDbAnswer(known, 5).body);
    expect((await get(served, unknown)).status).toBe(404);
    const { code, out } = await served.stop();
    expect(code).toBe(0);
    expect(out).toMatch(/internetdb simulator stopped: 2 requests, 2 distinct IPs, at most [12] in a second; answers: 1×200, 1×404\n/);
  });

  it('takes no API key and rejects bad flags with exit 2', async () => {
    const keyed = await runCli('cowrie-sim', ['internetdb', '--api-key-file', 'k']);
    expect(keyed.code).toBe(2);
    expect(keyed.stderr).toMatch(/unknown option '--api-key-file'/);
    const bad = await runCli('cowrie-sim', ['internetdb', '--stall-body-rate', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected a probability from 0 to 1');
  });
});
