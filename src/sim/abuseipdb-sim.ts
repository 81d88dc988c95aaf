/**
 * An AbuseIPDB API v2 `check` simulator (docs/PROTOCOLS.md §10.1): `GET /api/v2/check?ipAddress=…
 * [&maxAgeInDays=N][&verbose]` with the `Key` header (or `key` query parameter) and
 * `Accept: application/json`. Answers come from the simulated world (src/sim/world.ts): ~45% of
 * addresses have reports spread over the past year, counted within `maxAgeInDays`; a few are
 * whitelisted (score 0 despite reports) or Tor exits. Errors are JSON:API `errors[]` (HTML when the
 * client did not ask for JSON); every answer past the key check carries `X-RateLimit-Limit` and
 * `X-RateLimit-Remaining` (the daily quota, 1,000 as on the free plan), and 429s also
 * `Retry-After` and `X-RateLimit-Reset`. Deterministic for a seed.
 */
import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import ipaddr from 'ipaddr.js';
import { hash32, worldNetwork } from './world.js';
import {
  AcceptWindow,
  DailyCounter,
  FaultInjector,
  IpRequestCounter,
  newIpLookupStats,
  nextUtcMidnight,
  recordAnswer,
  secondsUntilUtcMidnight,
  sendJson,
  serveFault,
  sleep,
  startHttpSim,
} from './http-util.js';
import type { IpLookupStats, SimFaults } from './http-util.js';

export interface AbuseIpdbSimOptions {
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  seed?: number;
  /** When set, any other key gets 401; otherwise any key passes. A missing key is always 401. */
  apiKey?: string;
  /** Requests accepted in any sliding one-second window; beyond → 429 with Retry-After: 1. */
  ratePerSecond?: number;
  /** `check` lookups answered per UTC day; default 1,000 (free plan); beyond → 429 with the daily-limit detail. */
  dailyQuota?: number;
  /** Retry-After (seconds) of an injected `throttleRate` 429; default 1. */
  throttleRetryAfterSeconds?: number;
  /** Delay before every answer. */
  latencyMs?: number;
  faults?: SimFaults;
}

export interface AbuseIpdbSimStats extends IpLookupStats {
  /** Requests per API key sent (header or query; '' when none). */
  byApiKey: Map<string, number>;
}

export interface AbuseIpdbSim {
  url: string;
  port: number;
  stats: AbuseIpdbSimStats;
  close(): Promise<void>;
  setOptions(partial: Partial<Omit<AbuseIpdbSimOptions, 'port' | 'host' | 'seed'>>): void;
}

export const DEFAULT_DAILY_QUOTA = 1000;
export const AUTH_FAILED_DETAIL =
  'Authentication failed. Your API key is either missing, incorrect, or revoked. Note: The APIv2 key differs from the APIv1 key.';
export const BAD_IP_DETAIL = 'The ip address must be a valid IPv4 or IPv6 address (e.g. 8.8.8.8 or 2001:4860:4860::8888).';
export const BAD_MAX_AGE_DETAIL = 'The max age in days must be between 1 and 365.';
/** The burst 429 (AbuseIPDB documents only the daily one; this is Laravel's throttle text, which it runs on). */
export const TOO_MANY_ATTEMPTS_DETAIL = 'Too Many Attempts.';
export const dailyLimitDetail = (limit: number): string =>
  `Daily rate limit of ${limit} requests exceeded for this endpoint. See headers for additional details.`;

export interface AbuseIpdbError {
  detail: string;
  status: number;
  source?: { parameter: string };
}

const COUNTRY_NAMES: Record<string, string> = {
  US: 'United States of America', CN: 'China', RU: 'Russian Federation', DE: 'Germany', NL: 'Netherlands',
  BR: 'Brazil', IN: 'India', VN: 'Viet Nam', KR: 'Korea (Republic of)', GB: 'United Kingdom of Great Britain and Northern Ireland',
  FR: 'France', SG: 'Singapore', ZA: 'South Africa', IR: 'Iran (Islamic Republic of)', AR: 'Argentina',
};
const REPORTER_COUNTRIES = ['US', 'DE', 'NL', 'GB', 'FR', 'SG'];
const USAGE_BY_WORD: Record<string, string> = {
  HOSTING: 'Data Center/Web Hosting/Transit', CLOUD: 'Data Center/Web Hosting/Transit', DATA: 'Data Center/Web Hosting/Transit',
  SERVERS: 'Data Center/Web Hosting/Transit', CDN: 'Content Delivery Network', BROADBAND: 'Fixed Line ISP',
  FIBER: 'Fixed Line ISP', TELECOM: 'Mobile ISP', LINK: 'Fixed Line ISP', NET: 'Commercial',
};
/** AbuseIPDB categories a honeypot sees: 18 brute-force, 22 SSH, 14 port scan, 15 hacking, 23 IoT targeted. */
const CATEGORY_SETS = [[18, 22], [22], [14], [18, 22, 15], [23, 18]];
const COMMENTS = ['SSH brute force attempt', 'Cowrie honeypot: login attempts', 'Port scan', 'Telnet IoT credential stuffing', ''];

export interface AbuseIpdbCheckOptions {
  /** 1–365 (a string as in the query is checked the same way); default 30. */
  maxAgeInDays?: number | string;
  verbose?: boolean;
}

export type AbuseIpdbAnswer =
  | { status: 200; body: { data: Record<string, unknown> } }
  | { status: 422; body: { errors: AbuseIpdbError[] } };

interface Report {
  time: number;
  reporterId: number;
  categories: number[];
  comment: string;
  reporterCountryCode: string;
}

/** ISO 8601 with `+00:00`, as AbuseIPDB writes it. */
const isoUtc = (ms: number): string => new Date(ms).toISOString().slice(0, 19) + '+00:00';

/** Every report about `ip` in the past year, newest first, timed back from `now`'s UTC day start. */
function reportsOf(ip: string, seed: number, now: number): Report[] {
  const h = hash32(`abuse:${ip}`, seed);
  if (h % 100 >= 45) return [];
  const n = 1 + ((h >>> 7) % (h % 9 === 0 ? 400 : 40));
  const reporters = Math.max(1, Math.ceil(n * 0.4));
  const d = new Date(now);
  const day0 = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const out: Report[] = [];
  for (let i = 0; i < n; i++) {
    const r = hash32(`abuse:${ip}:${i}`, seed);
    // Recent reports are likelier: square a uniform draw.
    const u = (r % 100_000) / 100_000;
    const age = 1 + Math.floor(u * u * 365 * 86_400);
    const code = REPORTER_COUNTRIES[(r >>> 5) % REPORTER_COUNTRIES.length];
    out.push({
      time: day0 - age * 1000,
      reporterId: 1 + ((r >>> 11) % reporters) * 37,
      categories: CATEGORY_SETS[(r >>> 17) % CATEGORY_SETS.length],
      comment: COMMENTS[(r >>> 20) % COMMENTS.length],
      reporterCountryCode: code,
    });
  }
  return out.sort((a, b) => b.time - a.time);
}

function error422(detail: string, parameter: string): AbuseIpdbAnswer {
  return { status: 422, body: { errors: [{ detail, status: 422, source: { parameter } }] } };
}

/**
 * What `check` answers for `ip` in the world of `seed`: 200 with `data`, or 422 for a bad address or
 * `maxAgeInDays`. Reserved and private addresses get a 200 with `isPublic: false` and
 * `usageType: "Reserved"`, as the real service answers them.
 */
export function abuseIpdbCheck(ip: string, seed: number, options: AbuseIpdbCheckOptions = {}, now = Date.now()): AbuseIpdbAnswer {
  const version = isIP(ip);
  if (version === 0) return error422(BAD_IP_DETAIL, 'ipAddress');
  const rawAge = options.maxAgeInDays ?? 30;
  const maxAge = typeof rawAge === 'number' ? rawAge : /^\d{1,3}$/.test(rawAge) ? Number(rawAge) : NaN;
  if (!Number.isInteger(maxAge) || maxAge < 1 || maxAge > 365) return error422(BAD_MAX_AGE_DETAIL, 'maxAgeInDays');

  const isPublic = ipaddr.parse(ip).range() === 'unicast';
  const all = reportsOf(ip, seed, now);
  const recent = all.filter((r) => r.time >= now - maxAge * 86_400_000);
  const distinct = new Set(recent.map((r) => r.reporterId)).size;
  const g = hash32(`abuse2:${ip}`, seed);
  const whitelisted = isPublic ? g % 100 < 3 : true;
  const score = whitelisted || !isPublic ? 0 : Math.min(100, distinct * 15 + recent.length);

  const net = isPublic ? worldNetwork(ip, seed) : null;
  const as = net?.as ?? null;
  const word = as ? (/^AS\d+-([A-Z]+)/.exec(as.name)?.[1] ?? 'NET') : null;
  const domain = as && word ? `${word.toLowerCase()}-as${as.asn}.example` : null;
  const countryCode = net ? net.country : null;
  const data: Record<string, unknown> = {
    ipAddress: ip,
    isPublic,
    ipVersion: version,
    isWhitelisted: whitelisted,
    abuseConfidenceScore: score,
    countryCode,
  };
  if (options.verbose) data.countryName = countryCode ? COUNTRY_NAMES[countryCode] ?? null : null;
  Object.assign(data, {
    usageType: !isPublic ? 'Reserved' : word && (g >>> 8) % 20 !== 0 ? USAGE_BY_WORD[word] ?? 'Commercial' : null,
    isp: as && word ? `${word[0]}${word.slice(1).toLowerCase()} Networks AS${as.asn}` : null,
    domain,
    hostnames: domain && (g >>> 13) % 5 === 0 ? [`host-${ip.replace(/[.:]/g, '-')}.${domain}`] : [],
    isTor: isPublic && (g >>> 16) % 100 < 2,
    totalReports: recent.length,
    numDistinctUsers: distinct,
    lastReportedAt: all.length > 0 ? isoUtc(all[0].time) : null,
  });
  if (options.verbose) {
    data.reports = recent.slice(0, 10_000).map((r) => ({
      reportedAt: isoUtc(r.time),
      comment: r.comment,
      categories: r.categories,
      reporterId: r.reporterId,
      reporterCountryCode: r.reporterCountryCode,
      reporterCountryName: COUNTRY_NAMES[r.reporterCountryCode],
    }));
  }
  return { status: 200, body: { data } };
}

function htmlError(status: number, detail: string): string {
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>AbuseIPDB - ${status}</title></head><body><h1>${status}</h1><p>${detail}</p></body></html>\n`;
}

export async function startAbuseIpdbSim(options: AbuseIpdbSimOptions = {}): Promise<AbuseIpdbSim> {
  const seed = options.seed ?? 1;
  let opts: AbuseIpdbSimOptions = { ...options };
  const stats: AbuseIpdbSimStats = { ...newIpLookupStats(), byApiKey: new Map() };
  const counter = new IpRequestCounter(stats);
  const window = new AcceptWindow();
  const daily = new DailyCounter();
  const faults = new FaultInjector(seed);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = Date.now();
    const url = new URL(req.url ?? '/', 'http://sim');
    const check = req.method === 'GET' && url.pathname === '/api/v2/check';
    const ip = check ? url.searchParams.get('ipAddress') : null;
    counter.arrive(arrived, ip);
    const header = req.headers.key;
    const key = (typeof header === 'string' ? header : undefined) ?? url.searchParams.get('key') ?? '';
    stats.byApiKey.set(key, (stats.byApiKey.get(key) ?? 0) + 1);
    const wantsJson = (req.headers.accept ?? '').includes('application/json');
    const limit = opts.dailyQuota ?? DEFAULT_DAILY_QUOTA;
    const rateHeaders = (): Record<string, string> => ({
      'X-RateLimit-Limit': String(limit),
      'X-RateLimit-Remaining': String(Math.max(0, limit - daily.used(arrived))),
    });

    const answer = async (status: number, body: unknown, headers: Record<string, string> = {}): Promise<void> => {
      await sleep(opts.latencyMs ?? 0);
      recordAnswer(stats, arrived, status, ip ?? undefined);
      const errors = (body as { errors?: AbuseIpdbError[] }).errors;
      if (errors && !wantsJson) {
        const html = htmlError(status, errors[0].detail);
        res.writeHead(status, { 'Content-Type': 'text/html; charset=UTF-8', 'Content-Length': Buffer.byteLength(html), ...headers });
        res.end(html);
        return;
      }
      sendJson(res, status, body, headers, true);
    };
    const fail = (status: number, detail: string, headers?: Record<string, string>): Promise<void> =>
      answer(status, { errors: [{ detail, status }] }, headers);
    const throttled = (retryAfter: number, detail: string, resetMs = arrived + retryAfter * 1000): Promise<void> =>
      fail(429, detail, {
        ...rateHeaders(),
        'Retry-After': String(retryAfter),
        'X-RateLimit-Reset': String(Math.ceil(resetMs / 1000)),
      });

    if (!check) return fail(404, 'The requested resource could not be found.');
    if (key === '' || (opts.apiKey !== undefined && key !== opts.apiKey)) return fail(401, AUTH_FAILED_DETAIL);
    if (!window.tryAccept(opts.ratePerSecond, 1000, arrived)) return throttled(1, TOO_MANY_ATTEMPTS_DETAIL);
    const result = abuseIpdbCheck(ip ?? '', seed, {
      maxAgeInDays: url.searchParams.get('maxAgeInDays') ?? undefined,
      verbose: url.searchParams.has('verbose'),
    }, arrived);
    if (result.status === 422) return answer(422, result.body, rateHeaders());
    const fault = faults.decide(opts.faults, [ip ?? '']);
    if (fault === 'throttle') return throttled(opts.throttleRetryAfterSeconds ?? 1, TOO_MANY_ATTEMPTS_DETAIL);
    if (fault !== 'none') return serveFault(fault, res, { errors: [{ detail: 'Server Error', status: 500 }] }, { stats, arrived, key: ip ?? undefined, latencyMs: opts.latencyMs });
    if (!daily.tryTake(limit, 1, arrived)) return throttled(secondsUntilUtcMidnight(arrived), dailyLimitDetail(limit), nextUtcMidnight(arrived));
    return answer(200, result.body, rateHeaders());
  };

  const server = await startHttpSim(options.port ?? 0, handle, options.host);
  return {
    url: server.url,
    port: server.port,
    stats,
    close: server.close,
    setOptions(partial) {
      opts = { ...opts, ...partial };
    },
  };
}
