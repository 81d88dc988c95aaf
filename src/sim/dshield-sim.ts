/**
 * A DShield/ISC `api/ip` simulator (docs/PROTOCOLS.md §6, §10.3): `GET /api/ip/{ip}?json` (XML without
 * `?json`), answered from the simulated world (src/sim/world.ts): the AS, its country and the
 * network for every address, report counts and dates for ~40% of public addresses, threat feeds
 * for ~10%. Generic or missing User-Agents get ISC's 403 text; a per-second rate limit and an
 * optional daily quota answer 429 with Retry-After. Deterministic for a seed.
 */
import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import ipaddr from 'ipaddr.js';
import { hash32, worldNetwork } from './world.js';
import {
  AcceptWindow,
  DailyCounter,
  daysAgo,
  decodePathSegment,
  FaultInjector,
  IpRequestCounter,
  newIpLookupStats,
  recordAnswer,
  secondsUntilUtcMidnight,
  sendJson,
  serveFault,
  sleep,
  startHttpSim,
} from './http-util.js';
import type { IpLookupStats, SimFaults } from './http-util.js';

export interface DShieldSimOptions {
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  seed?: number;
  /** Requests accepted in any sliding one-second window; beyond → 429 with Retry-After: 1. ISC asks bots for at most 1/s. */
  ratePerSecond?: number;
  /** Lookups answered per UTC day; beyond → 429 with Retry-After until 00:00 UTC. ISC publishes none: off by default. */
  dailyQuota?: number;
  /** Retry-After (seconds) of an injected `throttleRate` 429; default 1 (ISC itself says: stop for 5 minutes). */
  throttleRetryAfterSeconds?: number;
  /** Refuse missing and generic User-Agents with 403, as ISC does; default true. */
  refuseGenericUserAgents?: boolean;
  /** Delay before every answer. */
  latencyMs?: number;
  faults?: SimFaults;
}

export interface DShieldSimStats extends IpLookupStats {
  /** Requests per User-Agent header ('' when none was sent). */
  byUserAgent: Map<string, number>;
}

export interface DShieldSim {
  url: string;
  port: number;
  stats: DShieldSimStats;
  close(): Promise<void>;
  setOptions(partial: Partial<Omit<DShieldSimOptions, 'port' | 'host' | 'seed'>>): void;
}

/** The text ISC answers a generic User-Agent with (wording ours; ISC's is similar in spirit). */
export const USER_AGENT_MESSAGE =
  'Please use a descriptive User-Agent that includes contact information (an e-mail address). Generic user agents are blocked. See https://isc.sans.edu/api/';
export const BAD_IP_BODY = { error: 'bad IP address' };
export const DSHIELD_THROTTLE_MESSAGE = 'Too many requests. Please slow down, and stop for 5 minutes.';

/** Library defaults ISC blocks (docs/PROTOCOLS.md §10.3), plus those of today's HTTP clients. */
const GENERIC_USER_AGENT = /^(python-urllib|python-requests|python-httpx|wget|curl|node|undici|go-http-client|okhttp|java|libwww-perl|axios|aiohttp|ruby|php)\b/i;

export function isGenericUserAgent(ua: string | undefined): boolean {
  return ua === undefined || ua.trim() === '' || GENERIC_USER_AGENT.test(ua.trim());
}

const FEEDS = ['forumspam', 'miner', 'ciarmy', 'blocklistde22', 'blocklistde110', 'tor', 'openresolver', 'shodan'];
const ABUSE_WORDS = ['abuse', 'noc', 'security', 'abuse-team'];

export interface DShieldAnswer {
  status: 200;
  body: { ip: Record<string, unknown> } | typeof BAD_IP_BODY;
}

function isPublic(ip: string): boolean {
  return ipaddr.parse(ip).range() === 'unicast';
}

/**
 * What `/api/ip/{ip}?json` answers for `ip` in the world of `seed` (the body before ISC's `\/`
 * escaping). Dates count back from `now`'s UTC day, so an answer holds for the whole day.
 * Non-public addresses carry no AS and no reports; ISC's answer for them is unverified.
 */
export function dshieldAnswer(ip: string, seed: number, now = Date.now()): DShieldAnswer {
  if (isIP(ip) === 0) return { status: 200, body: BAD_IP_BODY };
  const body: Record<string, unknown> = {
    number: ip,
    count: null,
    attacks: null,
    maxdate: null,
    mindate: null,
    updated: null,
    comment: null,
    maxrisk: null,
    asabusecontact: null,
    as: null,
    asname: null,
    ascountry: null,
    assize: null,
    network: null,
  };
  if (!isPublic(ip)) return { status: 200, body: { ip: body } };
  const net = worldNetwork(ip, seed);
  if (net.as) {
    const word = ABUSE_WORDS[net.as.asn % ABUSE_WORDS.length];
    Object.assign(body, {
      asabusecontact: `${word}@as${net.as.asn}.example.net`,
      as: net.as.asn,
      // Cymru's name without its ", CC" suffix: ISC shows the bare AS name.
      asname: net.as.name.replace(/, [A-Z]{2}$/, ''),
      ascountry: net.as.country,
      assize: 65_536 * (1 + (hash32(`assize:${net.as.asn}`, seed) % 400)),
      network: net.prefix,
    });
  }
  const h = hash32(`dshield:${ip}`, seed);
  const day0 = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate());
  if (h % 100 < 40) {
    const last = 1 + ((h >>> 7) % 30);
    const first = last + ((h >>> 12) % 300);
    Object.assign(body, {
      count: 1 + ((h >>> 3) % 2000),
      attacks: 1 + ((h >>> 15) % 300),
      maxdate: daysAgo(last, day0),
      mindate: daysAgo(first, day0),
      updated: `${daysAgo(1, day0)} ${String((h >>> 20) % 24).padStart(2, '0')}:${String((h >>> 5) % 60).padStart(2, '0')}:09`,
    });
  }
  const g = hash32(`dshield-feeds:${ip}`, seed);
  if (g % 100 < 10) {
    const feeds: Record<string, { lastseen: string; firstseen: string }> = {};
    const n = 1 + ((g >>> 7) % 3);
    for (let i = 0; i < n; i++) {
      const name = FEEDS[((g >>> 10) + i * 3) % FEEDS.length];
      const last = (g >>> (12 + i)) % 20;
      feeds[name] = { lastseen: daysAgo(last, day0), firstseen: daysAgo(last + ((g >>> (4 + i)) % 90), day0) };
    }
    body.threatfeeds = feeds;
  }
  return { status: 200, body: { ip: body } };
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The XML ISC serves without `?json`: the same fields as elements. */
export function dshieldXml(body: Record<string, unknown>): string {
  const element = (name: string, value: unknown): string => {
    if (value === null || value === undefined) return `<${name}/>`;
    if (typeof value === 'object') return `<${name}>${Object.entries(value).map(([k, v]) => element(k, v)).join('')}</${name}>`;
    return `<${name}>${xmlEscape(String(value))}</${name}>`;
  };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${Object.entries(body).map(([k, v]) => element(k, v)).join('')}\n`;
}

export async function startDShieldSim(options: DShieldSimOptions = {}): Promise<DShieldSim> {
  const seed = options.seed ?? 1;
  let opts: DShieldSimOptions = { ...options };
  const stats: DShieldSimStats = { ...newIpLookupStats(), byUserAgent: new Map() };
  const counter = new IpRequestCounter(stats);
  const window = new AcceptWindow();
  const daily = new DailyCounter();
  const faults = new FaultInjector(seed);
  const prefix = '/api/ip/';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = Date.now();
    const [rawPath, query = ''] = (req.url ?? '/').split('?');
    // ISC takes the format as `?json` or as a last path segment (`/api/ip/1.2.3.4/json`).
    const segments = rawPath.startsWith(prefix) ? rawPath.slice(prefix.length).split('/') : [];
    const pathJson = segments.length === 2 && segments[1] === 'json';
    const ip = req.method === 'GET' && (segments.length === 1 || pathJson) && segments[0] !== '' ? decodePathSegment(segments[0]) : null;
    const json = pathJson || query.split('&').includes('json');
    counter.arrive(arrived, ip);
    const ua = req.headers['user-agent'];
    stats.byUserAgent.set(ua ?? '', (stats.byUserAgent.get(ua ?? '') ?? 0) + 1);

    const done = async (status: number): Promise<void> => {
      await sleep(opts.latencyMs ?? 0);
      recordAnswer(stats, arrived, status, ip ?? undefined);
    };
    const text = async (status: number, body: string, headers: Record<string, string> = {}): Promise<void> => {
      await done(status);
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
      res.end(body);
    };
    const throttled = (retryAfter: number): Promise<void> => text(429, DSHIELD_THROTTLE_MESSAGE, { 'Retry-After': String(retryAfter) });

    if (ip === null) return text(404, 'Not Found');
    if ((opts.refuseGenericUserAgents ?? true) && isGenericUserAgent(ua)) return text(403, USER_AGENT_MESSAGE);
    if (!window.tryAccept(opts.ratePerSecond, 1000, arrived)) return throttled(1);
    const fault = faults.decide(opts.faults, [ip]);
    if (fault === 'throttle') return throttled(opts.throttleRetryAfterSeconds ?? 1);
    if (fault !== 'none') return serveFault(fault, res, { error: 'Internal Server Error' }, { stats, arrived, key: ip, latencyMs: opts.latencyMs });
    if (!daily.tryTake(opts.dailyQuota, 1, arrived)) return throttled(secondsUntilUtcMidnight(arrived));
    const answer = dshieldAnswer(ip, seed, arrived);
    await done(answer.status);
    if (json) {
      sendJson(res, answer.status, answer.body, {}, true);
      return;
    }
    const xml = dshieldXml(answer.body);
    res.writeHead(answer.status, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(xml) });
    res.end(xml);
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
