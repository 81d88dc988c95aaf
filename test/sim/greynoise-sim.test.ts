import { afterEach, describe, expect, it } from 'vitest';
import { greyNoiseAnswer, NOT_OBSERVED_MESSAGE, NOT_ROUTABLE_MESSAGE, startGreyNoiseSim } from '../../src/sim/greynoise-sim.js';
import type { GreyNoiseSim, GreyNoiseSimOptions } from '../../src/sim/greynoise-sim.js';

const sims: GreyNoiseSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

async function sim(options: GreyNoiseSimOptions = {}): Promise<GreyNoiseSim> {
  const s = await startGreyNoiseSim(options);
  sims.push(s);
  return s;
}

async function get(s: GreyNoiseSim, ip: string, key = 'k'): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${s.url}/v3/community/${ip}`, { headers: { key } });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

function findIp(pred: (a: ReturnType<typeof greyNoiseAnswer>) => boolean, seed = 1): string {
  for (let i = 0; ; i++) {
    const ip = `45.${(i >> 8) & 255}.${i & 255}.3`;
    if (pred(greyNoiseAnswer(ip, seed))) return ip;
  }
}

describe('GreyNoise simulator', () => {
  it('answers with the community v3 shapes: 200 noise/RIOT, 404 not observed, 400 not routable', async () => {
    const s = await sim();
    const noise = findIp((a) => a.status === 200 && a.body.riot === false);
    const riot = findIp((a) => a.status === 200 && a.body.riot === true);
    const quiet = findIp((a) => a.status === 404);

    const n = await get(s, noise);
    expect(n.status).toBe(200);
    expect(Object.keys(n.body).sort()).toEqual(['classification', 'ip', 'last_seen', 'link', 'message', 'name', 'noise', 'riot']);
    expect(n.body).toMatchObject({ ip: noise, noise: true, riot: false, message: 'Success', link: `https://viz.greynoise.io/ip/${noise}` });
    expect(['malicious', 'unknown', 'benign']).toContain(n.body.classification);
    expect(n.body.last_seen).toMatch(/^\d{4}-\d\d-\d\d$/);

    const r = await get(s, riot);
    expect(r.body).toMatchObject({ riot: true, classification: 'benign', link: `https://viz.greynoise.io/riot/${riot}` });

    const q = await get(s, quiet);
    expect(q).toMatchObject({ status: 404, body: { ip: quiet, noise: false, riot: false, message: NOT_OBSERVED_MESSAGE } });

    for (const bad of ['10.0.0.1', '192.168.1.1', '100.64.0.1', '2001:db8::1']) {
      const b = await get(s, bad);
      expect(b.status).toBe(400);
      expect(b.body.message).toContain(NOT_ROUTABLE_MESSAGE);
    }
    expect(s.stats.ipsRequested).toEqual([noise, riot, quiet, '10.0.0.1', '192.168.1.1', '100.64.0.1', '2001:db8::1']);
    expect(s.stats.byStatus).toEqual({ 200: 2, 404: 1, 400: 4 });
  });

  it('is deterministic per seed with roughly 35% noise and 3% RIOT', () => {
    const ips = Array.from({ length: 4000 }, (_, i) => `${60 + (i % 90)}.${(i * 7) & 255}.${i & 255}.${(i * 13) & 255}`);
    const a = ips.map((ip) => greyNoiseAnswer(ip, 1, 0));
    expect(ips.map((ip) => greyNoiseAnswer(ip, 1, 0))).toEqual(a);
    expect(ips.map((ip) => greyNoiseAnswer(ip, 2, 0))).not.toEqual(a);
    const riot = a.filter((x) => x.body.riot === true).length / ips.length;
    const noiseOnly = a.filter((x) => x.body.noise === true && x.body.riot === false).length / ips.length;
    expect(riot).toBeGreaterThan(0.015);
    expect(riot).toBeLessThan(0.05);
    expect(noiseOnly).toBeGreaterThan(0.3);
    expect(noiseOnly).toBeLessThan(0.4);
  });

  it('rejects other keys with 401 when a key is set', async () => {
    const s = await sim({ apiKey: 'right' });
    expect((await get(s, '8.8.8.8', 'wrong')).status).toBe(401);
    expect((await get(s, '8.8.8.8', 'right')).status).not.toBe(401);
  });

  it('answers 429 with Retry-After: 1 beyond the per-second rate, and the daily-limit body beyond the quota', async () => {
    const s = await sim({ ratePerSecond: 3 });
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => get(s, `45.0.0.${i + 1}`)));
    const limited = answers.filter((a) => a.status === 429);
    expect(limited).toHaveLength(2);
    expect(limited[0].headers.get('retry-after')).toBe('1');
    expect(limited[0].body.message).not.toMatch(/daily/);

    const d = await sim({ dailyQuota: 2 });
    expect((await get(d, '45.0.0.1')).status).not.toBe(429);
    expect((await get(d, '45.0.0.2')).status).not.toBe(429);
    const over = await get(d, '45.0.0.3');
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ 'rate-limit': '2-lookups/day', plan_url: 'https://greynoise.io/pricing' });
    expect(over.body.message).toContain('daily rate limit of 2 requests per day');
  });

  it('serves the enterprise multi quick check and refuses more than 1,000 IPs', async () => {
    const s = await sim();
    const noise = findIp((a) => a.status === 200 && a.body.riot === false);
    const quiet = findIp((a) => a.status === 404);
    const res = await fetch(`${s.url}/v2/noise/multi/quick`, {
      method: 'POST',
      headers: { key: 'k', 'Content-Type': 'application/json' },
      body: JSON.stringify({ ips: [noise, quiet, '10.1.1.1'] }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([
      { ip: noise, noise: true, riot: false, code: '0x01' },
      { ip: quiet, noise: false, riot: false, code: '0x00' },
      { ip: '10.1.1.1', noise: false, riot: false, code: '0x07' },
    ]);
    const tooMany = await fetch(`${s.url}/v2/noise/multi/quick`, {
      method: 'POST',
      body: JSON.stringify({ ips: Array.from({ length: 1001 }, (_, i) => `45.1.${i >> 8}.${i & 255}`) }),
    });
    expect(tooMany.status).toBe(400);
  });

  it('injects faults: 500 for chosen IPs, dropped connections, stalls that close() ends; setOptions changes behaviour', async () => {
    const s = await sim({ faults: { failIps: ['45.9.9.9'] } });
    expect((await get(s, '45.9.9.9')).status).toBe(500);
    s.setOptions({ faults: { dropRate: 1 } });
    await expect(fetch(`${s.url}/v3/community/45.9.9.8`)).rejects.toThrow();
    s.setOptions({ faults: { timeoutRate: 1 } });
    const stalled = fetch(`${s.url}/v3/community/45.9.9.7`).then(
      () => 'answered',
      () => 'ended',
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await s.close();
    expect(await stalled).toBe('ended');
    expect(s.stats.requests).toBe(3);
  });
});
