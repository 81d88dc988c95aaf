/**
 * A GreyNoise API simulator (docs/PROTOCOLS.md §2): the Community API v3 and the Enterprise
 * multi quick check, with a key check, a per-second rate limit, a daily quota and faults.
 * Answers are deterministic for a seed: ~3% of routable IPs are RIOT (business services),
 * ~35% are noise (scanners), the rest are 404 "not observed".
 */
import { isIPv4 } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hash32, isPrivateIpv4 } from './world.js';
import {
  AcceptWindow,
  applyFault,
  DailyCounter,
  daysAgo,
  FaultInjector,
  newStats,
  readBody,
  recordAnswer,
  sendJson,
  sleep,
  startHttpSim,
} from './http-util.js';
import type { SimFaults, SimStats } from './http-util.js';

export interface GreyNoiseSimFaults extends SimFaults {
  /** IPs always answered with HTTP 500. */
  failIps?: string[];
}

export interface GreyNoiseSimOptions {
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  seed?: number;
  /** When set, requests with any other (or no) `key` header get 401. */
  apiKey?: string;
  /** Requests accepted in any sliding one-second window; beyond → 429 with Retry-After: 1. */
  ratePerSecond?: number;
  /** Lookups answered per UTC day (enterprise: requests); beyond → 429 daily-limit body. */
  dailyQuota?: number;
  /** Delay before every answer. */
  latencyMs?: number;
  faults?: GreyNoiseSimFaults;
}

export interface GreyNoiseSimStats extends SimStats {
  /** Every IP asked about, in arrival order (enterprise: every IP of every request). */
  ipsRequested: string[];
}

export interface GreyNoiseSim {
  url: string;
  port: number;
  stats: GreyNoiseSimStats;
  close(): Promise<void>;
  setOptions(partial: Partial<Omit<GreyNoiseSimOptions, 'port' | 'host' | 'seed'>>): void;
}

export const NOT_OBSERVED_MESSAGE = 'IP not observed scanning the internet or contained in RIOT data set.';
export const NOT_ROUTABLE_MESSAGE = 'Request is not a valid routable IPv4 address';

const RIOT_NAMES = ['Google Public DNS', 'Cloudflare', 'Microsoft Corporation', 'Amazon Web Services', 'Akamai Technologies', 'Apple Inc.'];
const SCANNER_NAMES = ['Shodan.io', 'Censys, Inc.', 'Stretchoid.com', 'BinaryEdge', 'ShadowServer.org', 'Palo Alto Networks'];

export interface GreyNoiseAnswer {
  status: 200 | 400 | 404;
  body: Record<string, unknown>;
}

function routable(ip: string): boolean {
  if (!isIPv4(ip) || isPrivateIpv4(ip)) return false;
  const [a, b] = ip.split('.').map(Number);
  return !(a === 100 && b >= 64 && b <= 127);
}

/** What the community endpoint answers for `ip` in the world of `seed`. */
export function greyNoiseAnswer(ip: string, seed: number, now = Date.now()): GreyNoiseAnswer {
  if (!routable(ip)) return { status: 400, body: { message: NOT_ROUTABLE_MESSAGE } };
  const h = hash32(`gn:${ip}`, seed);
  const bucket = h % 1000;
  const lastSeen = daysAgo((h >>> 14) % 60, now);
  if (bucket < 30) {
    return {
      status: 200,
      body: {
        ip,
        noise: (h >>> 20) % 5 === 0,
        riot: true,
        classification: 'benign',
        name: RIOT_NAMES[(h >>> 10) % RIOT_NAMES.length],
        link: `https://viz.greynoise.io/riot/${ip}`,
        last_seen: lastSeen,
        message: 'Success',
      },
    };
  }
  if (bucket < 380) {
    const c = (h >>> 10) % 10;
    const classification = c < 6 ? 'malicious' : c < 9 ? 'unknown' : 'benign';
    return {
      status: 200,
      body: {
        ip,
        noise: true,
        riot: false,
        classification,
        name: classification === 'benign' ? SCANNER_NAMES[(h >>> 4) % SCANNER_NAMES.length] : 'unknown',
        link: `https://viz.greynoise.io/ip/${ip}`,
        last_seen: lastSeen,
        message: 'Success',
      },
    };
  }
  return { status: 404, body: { ip, noise: false, riot: false, message: NOT_OBSERVED_MESSAGE } };
}

/** The enterprise quick-check item for `ip` (docs/PROTOCOLS.md §2.3 codes). */
export function greyNoiseQuick(ip: string, seed: number): { ip: string; noise: boolean; riot: boolean; code: string } {
  const a = greyNoiseAnswer(ip, seed);
  if (a.status === 400) return { ip, noise: false, riot: false, code: '0x07' };
  const noise = a.body.noise === true;
  const riot = a.body.riot === true;
  const code = noise && riot ? '0x10' : riot ? '0x09' : noise ? '0x01' : '0x00';
  return { ip, noise, riot, code };
}

export async function startGreyNoiseSim(options: GreyNoiseSimOptions = {}): Promise<GreyNoiseSim> {
  const seed = options.seed ?? 1;
  let opts: GreyNoiseSimOptions = { ...options };
  const stats: GreyNoiseSimStats = { ...newStats(), ipsRequested: [] };
  const window = new AcceptWindow();
  const daily = new DailyCounter();
  const faults = new FaultInjector(seed);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = Date.now();
    stats.requests++;
    stats.requestTimes.push(arrived);
    const path = (req.url ?? '/').split('?')[0];
    const community = req.method === 'GET' && path.startsWith('/v3/community/');
    const quick = req.method === 'POST' && path === '/v2/noise/multi/quick';
    let ips: string[] = [];
    let badRequest: string | null = null;
    if (community) {
      ips = [decodeURIComponent(path.slice('/v3/community/'.length))];
    } else if (quick) {
      try {
        const body = JSON.parse(await readBody(req)) as { ips?: unknown };
        if (!Array.isArray(body.ips) || !body.ips.every((x) => typeof x === 'string')) badRequest = 'Body must be {"ips": [...]}';
        else if (body.ips.length > 1000) badRequest = 'At most 1000 IPs per request';
        else ips = body.ips as string[];
      } catch {
        badRequest = 'Body is not valid JSON';
      }
    }
    stats.ipsRequested.push(...ips);
    const key = ips.length === 1 ? ips[0] : undefined;
    const answer = async (status: number, body: unknown, headers?: Record<string, string>): Promise<void> => {
      await sleep(opts.latencyMs ?? 0);
      recordAnswer(stats, arrived, status, key);
      sendJson(res, status, body, headers);
    };

    if (!community && !quick) return answer(404, { message: 'Not found' });
    if (opts.apiKey !== undefined && req.headers.key !== opts.apiKey) {
      return answer(401, { message: 'Unauthorized. Please check your API key.' });
    }
    if (!window.tryAccept(opts.ratePerSecond, 1000, arrived)) {
      return answer(429, { message: 'Too many requests. Please slow down.' }, { 'Retry-After': '1' });
    }
    if (badRequest) return answer(400, { message: badRequest });
    const fault = faults.decide({ ...opts.faults, failKeys: [...(opts.faults?.failKeys ?? []), ...(opts.faults?.failIps ?? [])] }, ips);
    if (fault !== 'none') {
      if (fault === 'error500') {
        await sleep(opts.latencyMs ?? 0);
        recordAnswer(stats, arrived, 500, key);
      }
      applyFault(fault, res, { message: 'Internal Server Error' });
      return;
    }
    if (!daily.tryTake(opts.dailyQuota, 1, arrived)) {
      const q = opts.dailyQuota ?? 0;
      return answer(429, {
        plan: opts.apiKey === undefined ? 'unauthenticated' : 'community',
        'rate-limit': `${q}-lookups/day`,
        plan_url: 'https://greynoise.io/pricing',
        message: `You have hit your daily rate limit of ${q} requests per day. Please create a free account or upgrade your plan at https://greynoise.io/pricing.`,
      });
    }
    if (quick) return answer(200, ips.map((ip) => greyNoiseQuick(ip, seed)));
    const a = greyNoiseAnswer(ips[0], seed, arrived);
    return answer(a.status, a.body);
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
