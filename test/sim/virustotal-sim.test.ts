import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startVirusTotalSim, virusTotalKnows } from '../../src/sim/virustotal-sim.js';
import type { VirusTotalSim, VirusTotalSimOptions } from '../../src/sim/virustotal-sim.js';

const sims: VirusTotalSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

async function sim(options: VirusTotalSimOptions = {}): Promise<VirusTotalSim> {
  const s = await startVirusTotalSim(options);
  sims.push(s);
  return s;
}

const sha = (i: number): string => createHash('sha256').update(`sample ${i}`).digest('hex');

async function get(s: VirusTotalSim, id: string, key: string | null = 'k'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${s.url}/api/v3/files/${id}`, { headers: key === null ? {} : { 'x-apikey': key } });
  return { status: res.status, body: await res.json() };
}

function pick(known: boolean): string {
  for (let i = 0; ; i++) if (virusTotalKnows(sha(i), 1) === known) return sha(i);
}

describe('VirusTotal simulator', () => {
  it('answers a known SHA-256 with a v3 file object', async () => {
    const s = await sim();
    const h = pick(true);
    const { status, body } = await get(s, h);
    expect(status).toBe(200);
    expect(body.data).toMatchObject({ id: h, type: 'file', links: { self: `https://www.virustotal.com/api/v3/files/${h}` } });
    const a = body.data.attributes;
    expect(Object.keys(a.last_analysis_stats).sort()).toEqual(
      ['confirmed-timeout', 'failure', 'harmless', 'malicious', 'suspicious', 'timeout', 'type-unsupported', 'undetected'],
    );
    expect(Number.isInteger(a.last_analysis_date)).toBe(true);
    expect(a.last_analysis_date).toBeLessThan(Date.now() / 1000 + 1);
    expect(a.sha256).toBe(h);
    expect(a.sha1).toMatch(/^[0-9a-f]{40}$/);
    expect(a.md5).toMatch(/^[0-9a-f]{32}$/);
    const engine = Object.values(a.last_analysis_results)[0] as Record<string, unknown>;
    expect(Object.keys(engine).sort()).toEqual(['category', 'engine_name', 'engine_update', 'engine_version', 'method', 'result']);
    if (a.last_analysis_stats.malicious > 0) expect(typeof a.popular_threat_classification.suggested_threat_label).toBe('string');
  });

  it('knows about 70% of hashes, the same ones for the same seed', () => {
    const all = Array.from({ length: 2000 }, (_, i) => sha(i));
    const share = all.filter((h) => virusTotalKnows(h, 1)).length / all.length;
    expect(share).toBeGreaterThan(0.65);
    expect(share).toBeLessThan(0.75);
    expect(all.map((h) => virusTotalKnows(h, 2))).not.toEqual(all.map((h) => virusTotalKnows(h, 1)));
  });

  it('answers VT-style errors: 404 NotFoundError, 400 for a malformed id, 401 for missing or wrong keys', async () => {
    const s = await sim({ apiKey: 'right' });
    expect(await get(s, pick(false), 'right')).toMatchObject({ status: 404, body: { error: { code: 'NotFoundError' } } });
    expect(await get(s, 'not-a-hash', 'right')).toMatchObject({ status: 400, body: { error: { code: 'InvalidArgumentError' } } });
    expect(await get(s, pick(true), null)).toMatchObject({
      status: 401,
      body: { error: { code: 'AuthenticationRequiredError', message: 'X-Apikey header is missing' } },
    });
    expect(await get(s, pick(true), 'wrong')).toMatchObject({ status: 401, body: { error: { code: 'WrongCredentialsError', message: 'Wrong API key.' } } });
  });

  it('answers 429 TooManyRequestsError beyond the rate and QuotaExceededError beyond the daily quota', async () => {
    const s = await sim({ ratePerMinute: 2, rateWindowMs: 60_000 });
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await get(s, sha(i))).body.error?.code ?? 'ok');
    expect(codes[2]).toBe('TooManyRequestsError');
    expect(codes.slice(0, 2)).not.toContain('TooManyRequestsError');

    const q = await sim({ dailyQuota: 1 });
    expect((await get(q, sha(1))).status).not.toBe(429);
    expect(await get(q, sha(2))).toMatchObject({ status: 429, body: { error: { code: 'QuotaExceededError' } } });
  });

  it('answers 500 TransientError for injected faults and records what was asked', async () => {
    const s = await sim({ faults: { error500Rate: 1 } });
    expect(await get(s, sha(5))).toMatchObject({ status: 500, body: { error: { code: 'TransientError' } } });
    expect(s.stats).toMatchObject({ requests: 1, hashesRequested: [sha(5)], byStatus: { 500: 1 } });
  });
});
