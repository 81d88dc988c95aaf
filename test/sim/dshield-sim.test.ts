import { afterEach, describe, expect, it } from 'vitest';
import { BAD_IP_BODY, DSHIELD_THROTTLE_MESSAGE, dshieldAnswer, startDShieldSim, USER_AGENT_MESSAGE } from '../../src/sim/dshield-sim.js';
import type { DShieldSim, DShieldSimOptions } from '../../src/sim/dshield-sim.js';
import { MALFORMED_BODY } from '../../src/sim/http-util.js';
import { runCli } from '../helpers/cli.js';
import { rawGet, serveCli, stalledGet } from './http-sim-helpers.js';

const UA = 'cowrie-enrich/0.1 (honeypot@example.org)';
const sims: DShieldSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

async function sim(options: DShieldSimOptions = {}): Promise<DShieldSim> {
  const s = await startDShieldSim(options);
  sims.push(s);
  return s;
}

const get = (s: DShieldSim, ip: string, headers: Record<string, string> = { 'User-Agent': UA }, suffix = '?json') =>
  rawGet(`${s.url}/api/ip/${ip}${suffix}`, headers);

function findIp(pred: (ip: Record<string, unknown>) => boolean, seed = 1): string {
  for (let i = 0; ; i++) {
    const ip = `45.${(i >> 8) & 255}.${i & 255}.9`;
    const a = dshieldAnswer(ip, seed).body as { ip: Record<string, unknown> };
    if (pred(a.ip)) return ip;
  }
}

describe('DShield simulator', () => {
  it('answers /api/ip/{ip}?json with the ISC shape: reported IPs with counts and dates, others with nulls, `\\/` escaped', async () => {
    const s = await sim();
    const reported = findIp((x) => x.count !== null && x.as !== null);
    const quiet = findIp((x) => x.count === null && x.threatfeeds === undefined && x.as !== null);
    const feeds = findIp((x) => x.threatfeeds !== undefined);

    const r = await get(s, reported);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.text).toContain('\\/');
    const body = JSON.parse(r.text);
    expect(body).toEqual(dshieldAnswer(reported, 1).body);
    const ip = body.ip;
    expect(Object.keys(ip)).toEqual(['number', 'count', 'attacks', 'maxdate', 'mindate', 'updated', 'comment', 'maxrisk', 'asabusecontact', 'as', 'asname', 'ascountry', 'assize', 'network']);
    expect(ip).toMatchObject({ number: reported, comment: null, maxrisk: null });
    expect(Number.isInteger(ip.count) && Number.isInteger(ip.attacks) && Number.isInteger(ip.as)).toBe(true);
    expect(ip.maxdate).toMatch(/^\d{4}-\d\d-\d\d$/);
    expect(ip.mindate <= ip.maxdate).toBe(true);
    expect(ip.updated).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(ip.network).toMatch(/^45\.\d+\.0\.0\/16$/);
    expect(ip.asname).not.toMatch(/, [A-Z]{2}$/);

    const q = JSON.parse((await get(s, quiet)).text).ip;
    expect(q).toMatchObject({ number: quiet, count: null, attacks: null, maxdate: null, mindate: null, updated: null });
    expect(typeof q.asname).toBe('string');

    const f = JSON.parse((await get(s, feeds)).text).ip;
    for (const feed of Object.values(f.threatfeeds) as Array<{ firstseen: string; lastseen: string }>) {
      expect(feed.firstseen <= feed.lastseen).toBe(true);
    }

    expect(JSON.parse((await get(s, '10.1.2.3')).text).ip).toMatchObject({ number: '10.1.2.3', count: null, as: null, network: null });
    expect(JSON.parse((await get(s, 'not-an-ip')).text)).toEqual(BAD_IP_BODY);
    expect(s.stats.ipsRequested).toEqual([reported, quiet, feeds, '10.1.2.3', 'not-an-ip']);
    expect(s.stats.byStatus).toEqual({ 200: 5 });
  });

  it('serves XML without ?json and JSON for the /json path form', async () => {
    const s = await sim();
    const reported = findIp((x) => x.count !== null && x.as !== null);
    const xml = await get(s, reported, { 'User-Agent': UA }, '');
    expect(xml.headers['content-type']).toMatch(/^text\/xml/);
    expect(xml.text).toMatch(/^<\?xml/);
    expect(xml.text).toContain(`<ip><number>${reported}</number><count>`);
    expect(xml.text).toContain('<comment/>');
    expect(JSON.parse((await get(s, reported, { 'User-Agent': UA }, '/json')).text)).toEqual(dshieldAnswer(reported, 1).body);
  });

  it('is deterministic per seed: ~40% reported, ~10% on threat feeds', () => {
    const ips = Array.from({ length: 3000 }, (_, i) => `${60 + (i % 90)}.${(i * 7) & 255}.${i & 255}.${(i * 13) & 255}`);
    const a = ips.map((ip) => dshieldAnswer(ip, 1, 0));
    expect(ips.map((ip) => dshieldAnswer(ip, 1, 0))).toEqual(a);
    expect(ips.map((ip) => dshieldAnswer(ip, 2, 0))).not.toEqual(a);
    const share = (p: (x: Record<string, unknown>) => boolean) => a.filter((x) => p((x.body as { ip: Record<string, unknown> }).ip)).length / ips.length;
    expect(share((x) => x.count !== null)).toBeGreaterThan(0.35);
    expect(share((x) => x.count !== null)).toBeLessThan(0.45);
    expect(share((x) => x.threatfeeds !== undefined)).toBeGreaterThan(0.07);
    expect(share((x) => x.threatfeeds !== undefined)).toBeLessThan(0.13);
  });

  it('refuses missing and generic User-Agents with 403 text, and counts requests per User-Agent', async () => {
    const s = await sim();
    for (const headers of [{}, { 'User-Agent': 'curl/7.38.0' }, { 'User-Agent': 'Python-urllib/2.7' }, { 'User-Agent': 'node' }, { 'User-Agent': 'Wget/1.12 (linux-gnu)' }]) {
      const r = await get(s, '45.0.0.1', headers);
      expect(r).toMatchObject({ status: 403, text: USER_AGENT_MESSAGE });
      expect(r.headers['content-type']).toMatch(/^text\/plain/);
    }
    expect((await get(s, '45.0.0.1')).status).toBe(200);
    expect(s.stats.byUserAgent.get('')).toBe(1);
    expect(s.stats.byUserAgent.get(UA)).toBe(1);
    expect(s.stats.byStatus).toEqual({ 403: 5, 200: 1 });

    s.setOptions({ refuseGenericUserAgents: false });
    expect((await get(s, '45.0.0.1', {})).status).toBe(200);
  });

  it('answers 429 with Retry-After beyond the per-second rate and the daily quota, and counts the busiest second', async () => {
    const s = await sim({ ratePerSecond: 3 });
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => get(s, `45.0.0.${i + 1}`)));
    const limited = answers.filter((a) => a.status === 429);
    expect(limited).toHaveLength(2);
    expect(limited[0]).toMatchObject({ text: DSHIELD_THROTTLE_MESSAGE, headers: { 'retry-after': '1' } });
    expect(s.stats.maxPerSecond).toBeGreaterThanOrEqual(4); // 3 accepted and a refused one shared a second

    const d = await sim({ dailyQuota: 2 });
    expect((await get(d, '45.0.0.1')).status).toBe(200);
    expect((await get(d, '45.0.0.1')).status).toBe(200);
    const over = await get(d, '45.0.0.2');
    expect(over.status).toBe(429);
    const wait = Number(over.headers['retry-after']);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(86_400);
    expect(d.stats.byIp).toEqual(new Map([['45.0.0.1', 2], ['45.0.0.2', 1]]));
  });

  it('injects faults: outage 500, throttle 429, malformed JSON, a body that stalls, a dropped connection', async () => {
    const s = await sim({ faults: { error500Rate: 1 } });
    expect((await get(s, '45.0.0.1')).status).toBe(500);
    s.setOptions({ faults: { throttleRate: 1 }, throttleRetryAfterSeconds: 300 });
    expect(await get(s, '45.0.0.1')).toMatchObject({ status: 429, headers: { 'retry-after': '300' } });
    s.setOptions({ faults: { malformedKeys: ['45.0.0.2'] } });
    const bad = await get(s, '45.0.0.2');
    expect(bad).toMatchObject({ status: 200, text: MALFORMED_BODY });
    expect(() => JSON.parse(bad.text)).toThrow();
    expect((await get(s, '45.0.0.3')).status).toBe(200);
    s.setOptions({ faults: { dropRate: 1 } });
    await expect(get(s, '45.0.0.4')).rejects.toThrow();
    s.setOptions({ faults: { stallBodyKeys: ['45.0.0.5'] } });
    const stalled = stalledGet(`${s.url}/api/ip/45.0.0.5?json`, { 'User-Agent': UA });
    expect((await stalled.started).status).toBe(200);
    await s.close();
    expect(await stalled.finished).toBe('cut');
    expect(s.stats.byStatus).toEqual({ 500: 1, 429: 1, 200: 2 });
    expect(s.stats.requests).toBe(6);
  });
});

describe('cowrie-sim dshield (needs `npx tsc -p tsconfig.json` first)', () => {
  it('serves until SIGTERM, then prints what it counted', async () => {
    const served = await serveCli(['dshield', '--port', '0', '--rate', '0', '--seed', '3']);
    const ip = '45.1.2.3';
    const r = await rawGet(`${served.url}/api/ip/${ip}?json`, { 'User-Agent': UA });
    expect(JSON.parse(r.text)).toEqual(dshieldAnswer(ip, 3).body);
    expect((await rawGet(`${served.url}/api/ip/${ip}?json`)).status).toBe(403);
    const { code, out } = await served.stop();
    expect(code).toBe(0);
    expect(out).toMatch(/dshield simulator stopped: 2 requests, 1 distinct IPs, at most [12] in a second; answers: 1×200, 1×403\n/);
  });

  it('injects the requested faults and rejects bad flags with exit 2', async () => {
    const served = await serveCli(['dshield', '--port', '0', '--malformed-rate', '1']);
    expect((await rawGet(`${served.url}/api/ip/45.1.2.3?json`, { 'User-Agent': UA })).text).toBe(MALFORMED_BODY);
    expect((await served.stop()).code).toBe(0);
    const bad = await runCli('cowrie-sim', ['dshield', '--throttle-rate', '2']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected a probability from 0 to 1');
    const keyed = await runCli('cowrie-sim', ['dshield', '--api-key-file', 'k']);
    expect(keyed.code).toBe(2);
    expect(keyed.stderr).toMatch(/unknown option '--api-key-file'/);
  });
});
