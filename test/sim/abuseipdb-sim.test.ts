import { afterEach, describe, expect, it } from 'vitest';
import {
  abuseIpdbCheck,
  AUTH_FAILED_DETAIL,
  BAD_IP_DETAIL,
  BAD_MAX_AGE_DETAIL,
  dailyLimitDetail,
  startAbuseIpdbSim,
  TOO_MANY_ATTEMPTS_DETAIL,
} from '../../src/sim/abuseipdb-sim.js';
import type { AbuseIpdbSim, AbuseIpdbSimOptions } from '../../src/sim/abuseipdb-sim.js';
import { MALFORMED_BODY } from '../../src/sim/http-util.js';
import { runCli } from '../helpers/cli.js';
import { rawGet, serveCli, stalledGet } from './http-sim-helpers.js';

const KEY = 'abuse-key';
const sims: AbuseIpdbSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

async function sim(options: AbuseIpdbSimOptions = {}): Promise<AbuseIpdbSim> {
  const s = await startAbuseIpdbSim(options);
  sims.push(s);
  return s;
}

const JSON_HEADERS = { Key: KEY, Accept: 'application/json' };
const checkUrl = (s: { url: string }, ip: string, query = '') => `${s.url}/api/v2/check?ipAddress=${encodeURIComponent(ip)}${query}`;
const check = (s: AbuseIpdbSim, ip: string, query = '', headers: Record<string, string> = JSON_HEADERS) => rawGet(checkUrl(s, ip, query), headers);

type Data = Record<string, unknown>;
function findIp(pred: (d: Data) => boolean, seed = 1): string {
  for (let i = 0; ; i++) {
    const ip = `45.${(i >> 8) & 255}.${i & 255}.7`;
    const a = abuseIpdbCheck(ip, seed);
    if (a.status === 200 && pred(a.body.data)) return ip;
  }
}

describe('AbuseIPDB simulator', () => {
  it('answers check with the v2 data object, `\\/` escaped, and the daily X-RateLimit headers', async () => {
    const s = await sim();
    const reported = findIp((d) => (d.totalReports as number) > 0 && d.isWhitelisted === false && String(d.usageType).includes('/'));
    const r = await check(s, reported);
    expect(r.status).toBe(200);
    expect(r.headers).toMatchObject({ 'x-ratelimit-limit': '1000', 'x-ratelimit-remaining': '999' });
    expect(r.text).toContain('Data Center\\/Web Hosting\\/Transit');
    const body = JSON.parse(r.text);
    expect(body).toEqual(abuseIpdbCheck(reported, 1, { maxAgeInDays: 30 }).body);
    const d = body.data;
    expect(Object.keys(d)).toEqual([
      'ipAddress', 'isPublic', 'ipVersion', 'isWhitelisted', 'abuseConfidenceScore', 'countryCode', 'usageType', 'isp', 'domain',
      'hostnames', 'isTor', 'totalReports', 'numDistinctUsers', 'lastReportedAt',
    ]);
    expect(d).toMatchObject({ ipAddress: reported, isPublic: true, ipVersion: 4 });
    expect(d.abuseConfidenceScore).toBeGreaterThan(0);
    expect(d.abuseConfidenceScore).toBeLessThanOrEqual(100);
    expect(d.numDistinctUsers).toBeLessThanOrEqual(d.totalReports);
    expect(d.lastReportedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    expect((await check(s, reported)).headers['x-ratelimit-remaining']).toBe('998');
    expect(s.stats.byIp.get(reported)).toBe(2);
    expect(s.stats.byApiKey.get(KEY)).toBe(2);
  });

  it('counts reports within maxAgeInDays; verbose adds countryName and those reports', async () => {
    const s = await sim();
    const ip = findIp((d) => (d.totalReports as number) > 0);
    const year = JSON.parse((await check(s, ip, '&maxAgeInDays=365&verbose')).text).data;
    const day = JSON.parse((await check(s, ip, '&maxAgeInDays=1')).text).data;
    expect(year.totalReports).toBeGreaterThanOrEqual(day.totalReports);
    expect(year.totalReports).toBeGreaterThanOrEqual(JSON.parse((await check(s, ip)).text).data.totalReports);
    expect(year.lastReportedAt).toBe(day.lastReportedAt);
    expect(typeof year.countryName).toBe('string');
    expect(year.reports).toHaveLength(year.totalReports);
    expect(new Set(year.reports.map((r: { reporterId: number }) => r.reporterId)).size).toBe(year.numDistinctUsers);
    expect(Object.keys(year.reports[0])).toEqual(['reportedAt', 'comment', 'categories', 'reporterId', 'reporterCountryCode', 'reporterCountryName']);
    expect(year.reports[0].reportedAt).toBe(year.lastReportedAt);
  });

  it('is deterministic per seed, with whitelisted IPs scoring 0 despite reports', () => {
    const ips = Array.from({ length: 3000 }, (_, i) => `${60 + (i % 90)}.${(i * 7) & 255}.${i & 255}.${(i * 13) & 255}`);
    const at = Date.UTC(2026, 2, 3, 12);
    const a = ips.map((ip) => abuseIpdbCheck(ip, 1, { maxAgeInDays: 365 }, at));
    expect(ips.map((ip) => abuseIpdbCheck(ip, 1, { maxAgeInDays: 365 }, at))).toEqual(a);
    expect(ips.map((ip) => abuseIpdbCheck(ip, 2, { maxAgeInDays: 365 }, at))).not.toEqual(a);
    const data = a.map((x) => x.body as { data: Data }).map((b) => b.data);
    const reported = data.filter((d) => (d.totalReports as number) > 0).length / ips.length;
    expect(reported).toBeGreaterThan(0.4);
    expect(reported).toBeLessThan(0.5);
    const white = data.filter((d) => d.isWhitelisted === true && (d.totalReports as number) > 0);
    expect(white.length).toBeGreaterThan(0);
    expect(white.every((d) => d.abuseConfidenceScore === 0)).toBe(true);
  });

  it('answers reserved addresses with 200, isPublic false and usageType Reserved; IPv6 too', async () => {
    const s = await sim();
    for (const ip of ['10.0.0.1', '127.0.0.1', '192.0.2.1', '2001:db8::1']) {
      const d = JSON.parse((await check(s, ip)).text).data;
      expect(d).toMatchObject({ ipAddress: ip, isPublic: false, usageType: 'Reserved', countryCode: null, isp: null, domain: null, abuseConfidenceScore: 0 });
    }
    const v6 = JSON.parse((await check(s, '2a01:4f8::1')).text).data;
    expect(v6).toMatchObject({ ipVersion: 6, isPublic: true });
  });

  it('answers JSON:API errors: 401 missing or wrong key, 422 bad address or maxAgeInDays; HTML without Accept: application/json', async () => {
    const s = await sim({ apiKey: KEY });
    const err = async (r: Promise<{ status: number; text: string }>) => {
      const a = await r;
      return { status: a.status, body: JSON.parse(a.text) };
    };
    const auth = { status: 401, body: { errors: [{ detail: AUTH_FAILED_DETAIL, status: 401 }] } };
    expect(await err(check(s, '45.0.0.1', '', { Accept: 'application/json' }))).toEqual(auth);
    expect(await err(check(s, '45.0.0.1', '', { Key: 'wrong', Accept: 'application/json' }))).toEqual(auth);
    expect((await check(s, '45.0.0.1', `&key=${KEY}`, { Accept: 'application/json' })).status).toBe(200);
    expect(await err(check(s, '999.1.1.1'))).toEqual({ status: 422, body: { errors: [{ detail: BAD_IP_DETAIL, status: 422, source: { parameter: 'ipAddress' } }] } });
    for (const age of ['0', '366', 'x']) {
      expect(await err(check(s, '45.0.0.1', `&maxAgeInDays=${age}`))).toEqual({
        status: 422,
        body: { errors: [{ detail: BAD_MAX_AGE_DETAIL, status: 422, source: { parameter: 'maxAgeInDays' } }] },
      });
    }
    const html = await check(s, '45.0.0.1', '', { Key: 'wrong' });
    expect(html.status).toBe(401);
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.text).toContain(AUTH_FAILED_DETAIL);
    expect(s.stats.byApiKey.get('wrong')).toBe(2);
    expect(s.stats.byApiKey.get('')).toBe(1);
  });

  it('answers 429 with Retry-After and X-RateLimit headers beyond the per-second rate and the daily quota', async () => {
    const s = await sim({ ratePerSecond: 3 });
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => check(s, `45.0.0.${i + 1}`)));
    const limited = answers.filter((a) => a.status === 429);
    expect(limited).toHaveLength(2);
    expect(limited[0].headers['retry-after']).toBe('1');
    expect(JSON.parse(limited[0].text)).toEqual({ errors: [{ detail: TOO_MANY_ATTEMPTS_DETAIL, status: 429 }] });
    expect(s.stats.maxPerSecond).toBeGreaterThanOrEqual(4); // 3 accepted and a refused one shared a second

    const d = await sim({ dailyQuota: 2 });
    expect((await check(d, '45.0.0.1')).headers['x-ratelimit-remaining']).toBe('1');
    expect((await check(d, '45.0.0.2')).headers['x-ratelimit-remaining']).toBe('0');
    const over = await check(d, '45.0.0.3');
    expect(over.status).toBe(429);
    expect(JSON.parse(over.text)).toEqual({ errors: [{ detail: dailyLimitDetail(2), status: 429 }] });
    expect(over.text).toContain('Daily rate limit of 2 requests exceeded for this endpoint.');
    expect(over.headers).toMatchObject({ 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0' });
    const wait = Number(over.headers['retry-after']);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(86_400);
    const reset = Number(over.headers['x-ratelimit-reset']);
    expect(reset % 86_400).toBe(0); // the next 00:00 UTC, in epoch seconds
  });

  it('injects faults: outage 500, throttle 429, malformed JSON, a body that stalls, a dropped connection', async () => {
    const s = await sim({ faults: { error500Rate: 1 } });
    const outage = await check(s, '45.0.0.1');
    expect(outage.status).toBe(500);
    expect(JSON.parse(outage.text).errors[0].status).toBe(500);
    s.setOptions({ faults: { throttleRate: 1 }, throttleRetryAfterSeconds: 29_241 });
    expect(await check(s, '45.0.0.1')).toMatchObject({ status: 429, headers: { 'retry-after': '29241' } });
    s.setOptions({ faults: { malformedRate: 1 } });
    const bad = await check(s, '45.0.0.2');
    expect(bad).toMatchObject({ status: 200, text: MALFORMED_BODY });
    expect(() => JSON.parse(bad.text)).toThrow();
    s.setOptions({ faults: { dropRate: 1 } });
    await expect(check(s, '45.0.0.4')).rejects.toThrow();
    s.setOptions({ faults: { stallBodyRate: 1 } });
    const stalled = stalledGet(checkUrl(s, '45.0.0.5'), JSON_HEADERS);
    expect((await stalled.started).status).toBe(200);
    await s.close();
    expect(await stalled.finished).toBe('cut');
    expect(s.stats.byStatus).toEqual({ 500: 1, 429: 1, 200: 1 });
    expect(s.stats.requests).toBe(5);
  });
});

describe('cowrie-sim abuseipdb (needs `npx tsc -p tsconfig.json` first)', () => {
  it('serves with the quota and key asked for until SIGTERM, then prints what it counted', async () => {
    const served = await serveCli(['abuseipdb', '--port', '0', '--seed', '4', '--daily-quota', '1']);
    const ip = '45.1.2.3';
    const r = await rawGet(checkUrl(served, ip), JSON_HEADERS);
    expect(r.headers['x-ratelimit-limit']).toBe('1');
    expect(JSON.parse(r.text)).toEqual(abuseIpdbCheck(ip, 4).body);
    expect((await rawGet(checkUrl(served, ip), JSON_HEADERS)).status).toBe(429);
    const { code, out } = await served.stop();
    expect(code).toBe(0);
    expect(out).toMatch(/abuseipdb simulator stopped: 2 requests, 1 distinct IPs, at most [12] in a second; answers: 1×200, 1×429\n/);
  });

  it('rejects bad flags with exit 2', async () => {
    const bad = await runCli('cowrie-sim', ['abuseipdb', '--malformed-rate', '1.5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected a probability from 0 to 1');
  });
});
