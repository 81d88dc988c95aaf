/**
 * A Shodan InternetDB simulator (docs/PROTOCOLS.md §10.2): `GET /{ip}`, no key. ~45% of public IPv4
 * addresses (~5% of IPv6) have open ports, CPEs, tags and CVEs drawn from the simulated world;
 * the rest, and every non-public address, get the normal `404 {"detail":"No information
 * available"}`. A per-second rate limit and an optional daily quota answer Shodan's 429 body, with
 * Retry-After (the real service's Retry-After is unverified). Deterministic for a seed.
 */
import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import ipaddr from 'ipaddr.js';
import { hash32 } from './world.js';
import {
  AcceptWindow,
  DailyCounter,
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

export interface InternetDbSimOptions {
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  seed?: number;
  /** Requests accepted in any sliding one-second window; beyond → 429 with Retry-After: 1. */
  ratePerSecond?: number;
  /** Lookups answered per UTC day; beyond → 429 with Retry-After until 00:00 UTC. Shodan publishes none: off by default. */
  dailyQuota?: number;
  /** Retry-After (seconds) of an injected `throttleRate` 429; default 1. */
  throttleRetryAfterSeconds?: number;
  /** Delay before every answer. */
  latencyMs?: number;
  faults?: SimFaults;
}

export interface InternetDbSim {
  url: string;
  port: number;
  stats: IpLookupStats;
  close(): Promise<void>;
  setOptions(partial: Partial<Omit<InternetDbSimOptions, 'port' | 'host' | 'seed'>>): void;
}

export const NO_INFORMATION_BODY = { detail: 'No information available' };
/** The answer to something that is not an IP address (the real wording is unverified). */
export const INVALID_IP_BODY = { detail: 'Invalid IP address' };
export const RATE_LIMIT_BODY = { error: 'Rate limit exceeded. Contact sales@shodan.io if you need a higher rate limit.' };

/** What a host may run: port, its CPE (or none), CVEs that come with that CPE. */
const SERVICES: Array<[number, string | null, string[]]> = [
  [22, 'cpe:/a:openbsd:openssh:7.4', ['CVE-2018-15473', 'CVE-2023-38408']],
  [22, 'cpe:/a:openbsd:openssh:8.2p1', ['CVE-2023-38408']],
  [22, 'cpe:/a:dropbear_ssh_project:dropbear_ssh:2017.75', ['CVE-2017-9078']],
  [23, null, []],
  [80, 'cpe:/a:nginx:nginx:1.18.0', ['CVE-2021-23017']],
  [80, 'cpe:/a:apache:http_server:2.4.29', ['CVE-2019-0211', 'CVE-2021-41773']],
  [443, 'cpe:/a:nginx:nginx', []],
  [2222, null, []],
  [3389, 'cpe:/o:microsoft:windows', []],
  [5555, null, []],
  [7547, null, []],
  [8080, 'cpe:/a:apache:tomcat:9.0.31', ['CVE-2020-1938']],
  [6379, 'cpe:/a:redis:redis:5.0.7', ['CVE-2022-0543']],
  [8443, null, []],
];
const OS_CPES = ['cpe:/o:linux:linux_kernel', 'cpe:/o:canonical:ubuntu_linux', 'cpe:/o:debian:debian_linux'];
const TAGS = ['eol-os', 'self-signed', 'starttls', 'cloud', 'iot', 'database', 'vpn', 'compromised'];

export type InternetDbAnswer =
  | { status: 200; body: { cpes: string[]; hostnames: string[]; ip: string; ports: number[]; tags: string[]; vulns: string[] } }
  | { status: 400; body: typeof INVALID_IP_BODY }
  | { status: 404; body: typeof NO_INFORMATION_BODY };

/**
 * What `/{ip}` answers in the world of `seed`. Non-public addresses get 404: clients skip them,
 * and what the real service says about them is unverified.
 */
export function internetDbAnswer(ip: string, seed: number): InternetDbAnswer {
  const version = isIP(ip);
  if (version === 0) return { status: 400, body: INVALID_IP_BODY };
  if (ipaddr.parse(ip).range() !== 'unicast') return { status: 404, body: NO_INFORMATION_BODY };
  const h = hash32(`internetdb:${ip}`, seed);
  if (h % 100 >= (version === 4 ? 45 : 5)) return { status: 404, body: NO_INFORMATION_BODY };

  const count = 1 + ((h >>> 7) % 4);
  const ports = new Set<number>();
  const cpes = new Set<string>();
  const vulns = new Set<string>();
  for (let i = 0; i < count; i++) {
    const [port, cpe, cves] = SERVICES[hash32(`internetdb:${ip}:${i}`, seed) % SERVICES.length];
    ports.add(port);
    if (cpe) cpes.add(cpe);
    for (const cve of cves) vulns.add(cve);
  }
  if ((h >>> 11) % 3 === 0) cpes.add(OS_CPES[(h >>> 13) % OS_CPES.length]);
  const tags = (h >>> 15) % 2 === 0 ? [TAGS[(h >>> 16) % TAGS.length]] : [];
  const hostnames = (h >>> 19) % 4 === 0 ? [`host-${ip.replace(/[.:]/g, '-')}.scan${(h >>> 21) % 50}.example.net`] : [];
  return {
    status: 200,
    body: {
      cpes: [...cpes],
      hostnames,
      ip,
      ports: [...ports].sort((a, b) => a - b),
      tags,
      vulns: [...vulns].sort(),
    },
  };
}

export async function startInternetDbSim(options: InternetDbSimOptions = {}): Promise<InternetDbSim> {
  const seed = options.seed ?? 1;
  let opts: InternetDbSimOptions = { ...options };
  const stats = newIpLookupStats();
  const counter = new IpRequestCounter(stats);
  const window = new AcceptWindow();
  const daily = new DailyCounter();
  const faults = new FaultInjector(seed);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = Date.now();
    const path = (req.url ?? '/').split('?')[0];
    const segment = path.slice(1);
    // `/docs` and other named pages are not lookups.
    const ip = req.method === 'GET' && segment !== '' && !segment.includes('/') && segment !== 'docs' ? decodePathSegment(segment) : null;
    counter.arrive(arrived, ip);
    const answer = async (status: number, body: unknown, headers?: Record<string, string>): Promise<void> => {
      await sleep(opts.latencyMs ?? 0);
      recordAnswer(stats, arrived, status, ip ?? undefined);
      sendJson(res, status, body, headers);
    };

    if (ip === null) return answer(404, { detail: 'Not Found' });
    if (!window.tryAccept(opts.ratePerSecond, 1000, arrived)) return answer(429, RATE_LIMIT_BODY, { 'Retry-After': '1' });
    const fault = faults.decide(opts.faults, [ip]);
    if (fault === 'throttle') return answer(429, RATE_LIMIT_BODY, { 'Retry-After': String(opts.throttleRetryAfterSeconds ?? 1) });
    if (fault !== 'none') return serveFault(fault, res, { detail: 'Internal Server Error' }, { stats, arrived, key: ip, latencyMs: opts.latencyMs });
    if (!daily.tryTake(opts.dailyQuota, 1, arrived)) {
      return answer(429, RATE_LIMIT_BODY, { 'Retry-After': String(secondsUntilUtcMidnight(arrived)) });
    }
    const a = internetDbAnswer(ip, seed);
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
