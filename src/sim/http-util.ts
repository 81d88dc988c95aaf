/**
 * Shared pieces of the HTTP simulators (GreyNoise, VirusTotal): a server-side rate window,
 * a per-UTC-day quota, seeded fault injection, request statistics and a clean close.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SimFaults {
  /** Fraction (0..1) of requests answered with HTTP 500. */
  error500Rate?: number;
  /** Fraction of requests that never get an answer (the client must time out). */
  timeoutRate?: number;
  /** Fraction of requests whose connection is dropped without an answer. */
  dropRate?: number;
  /** Keys (IPs or hashes) always answered with HTTP 500. */
  failKeys?: string[];
  /** Each key is answered with HTTP 500 this many times before its real answer. */
  failTimesPerKey?: number;
  /** Keys answered with 200 headers and the first bytes of a body that never finishes (the client must time out). */
  stallBodyKeys?: string[];
  /** Fraction of requests whose body stalls as for stallBodyKeys. */
  stallBodyRate?: number;
  /** Fraction of requests answered 200 with a body that is not valid JSON. */
  malformedRate?: number;
  /** Keys always answered 200 with a body that is not valid JSON. */
  malformedKeys?: string[];
  /** Fraction of requests answered 429 (with Retry-After) as if throttled, whatever the rate. */
  throttleRate?: number;
}

export interface SimLogEntry {
  /** Arrival time, ms since the epoch. */
  time: number;
  status: number;
  key?: string;
}

export interface SimStats {
  requests: number;
  /** Arrival time of each request, ms since the epoch. */
  requestTimes: number[];
  /** Answers sent, by HTTP status (stalled and dropped requests have none). */
  byStatus: Record<number, number>;
  /** One entry per answer, in the order answered. */
  log: SimLogEntry[];
}

export function newStats(): SimStats {
  return { requests: 0, requestTimes: [], byStatus: {}, log: [] };
}

/** mulberry32: a tiny seeded PRNG so fault draws repeat for a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Counts requests the server accepted in a sliding window (rejected ones do not count). */
export class AcceptWindow {
  readonly #times: number[] = [];
  tryAccept(limit: number | undefined, windowMs: number, now: number): boolean {
    if (limit === undefined) return true;
    while (this.#times.length > 0 && this.#times[0] <= now - windowMs) this.#times.shift();
    if (this.#times.length >= limit) return false;
    this.#times.push(now);
    return true;
  }
}

/** A quota that resets at 00:00 UTC, as both services do. */
export class DailyCounter {
  #day = '';
  #used = 0;
  tryTake(limit: number | undefined, n: number, now: number): boolean {
    const day = new Date(now).toISOString().slice(0, 10);
    if (day !== this.#day) {
      this.#day = day;
      this.#used = 0;
    }
    if (limit !== undefined && this.#used + n > limit) return false;
    this.#used += n;
    return true;
  }

  /** Lookups taken so far on `now`'s UTC day. */
  used(now: number): number {
    return new Date(now).toISOString().slice(0, 10) === this.#day ? this.#used : 0;
  }
}

export type FaultAction = 'none' | 'error500' | 'stall' | 'stallBody' | 'drop' | 'malformed' | 'throttle';

/** Decides, per request, which injected fault (if any) applies. */
export class FaultInjector {
  readonly #random: () => number;
  readonly #failed = new Map<string, number>();
  constructor(seed: number) {
    this.#random = seededRandom(seed ^ 0x5eed);
  }
  decide(faults: SimFaults | undefined, keys: string[]): FaultAction {
    if (!faults) return 'none';
    if (faults.failKeys && keys.some((k) => faults.failKeys!.includes(k))) return 'error500';
    if (faults.stallBodyKeys && keys.some((k) => faults.stallBodyKeys!.includes(k))) return 'stallBody';
    if (faults.malformedKeys && keys.some((k) => faults.malformedKeys!.includes(k))) return 'malformed';
    if (faults.failTimesPerKey && keys.length > 0) {
      const id = keys.join(',');
      const n = this.#failed.get(id) ?? 0;
      if (n < faults.failTimesPerKey) {
        this.#failed.set(id, n + 1);
        return 'error500';
      }
    }
    const r = this.#random();
    let edge = faults.dropRate ?? 0;
    if (r < edge) return 'drop';
    edge += faults.timeoutRate ?? 0;
    if (r < edge) return 'stall';
    edge += faults.error500Rate ?? 0;
    if (r < edge) return 'error500';
    edge += faults.stallBodyRate ?? 0;
    if (r < edge) return 'stallBody';
    edge += faults.malformedRate ?? 0;
    if (r < edge) return 'malformed';
    edge += faults.throttleRate ?? 0;
    if (r < edge) return 'throttle';
    return 'none';
  }
}

export function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

/**
 * Send `body` as JSON. `escapeSlashes` writes `/` as `\/`, as PHP services (ISC, AbuseIPDB) do:
 * still valid JSON, but a client that reads the text instead of parsing it breaks.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, escapeSlashes = false): void {
  const json = JSON.stringify(body);
  const text = escapeSlashes ? json.replaceAll('/', '\\/') : json;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function readBody(req: IncomingMessage, maxBytes = 1 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

export interface RunningSim {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Start a server on 127.0.0.1 whose handler errors become 500s, and whose close()
 * also ends stalled and kept-alive connections.
 */
export async function startHttpSim(
  port: number,
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  host = '127.0.0.1',
): Promise<RunningSim> {
  const server: Server = createServer((req, res) => {
    handler(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { message: 'simulator error' });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A 200 answer whose body is cut off mid-value: complete on the wire, not valid JSON. */
export const MALFORMED_BODY = '{"data": {"ip": "198.51.100.7", "ports": [22, 80,';

/**
 * Carry out an injected fault; true when the request is dealt with.
 * A stalled request is simply never answered (close() ends it); a stalled body gets its headers
 * and a first chunk, then nothing more. A simulator with its own throttle answer handles
 * 'throttle' itself; this one is generic.
 */
export function applyFault(action: FaultAction, res: ServerResponse, body500: unknown): boolean {
  if (action === 'none') return false;
  if (action === 'malformed') {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(MALFORMED_BODY) });
    res.end(MALFORMED_BODY);
  }
  if (action === 'throttle') sendJson(res, 429, { message: 'Too Many Requests' }, { 'Retry-After': '1' });
  if (action === 'stallBody') {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '4096' });
    res.write('{"ip": "');
  }
  if (action === 'drop') res.socket?.destroy();
  if (action === 'error500') sendJson(res, 500, body500);
  return true;
}

export function recordAnswer(stats: SimStats, time: number, status: number, key?: string): void {
  stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
  stats.log.push(key === undefined ? { time, status } : { time, status, key });
}

/** A YYYY-MM-DD date `daysAgo` days before today (UTC). */
export function daysAgo(daysAgo: number, now = Date.now()): string {
  return new Date(now - daysAgo * 86_400_000).toISOString().slice(0, 10);
}

/** The next 00:00 UTC after `now` (ms since the epoch), when a DailyCounter resets. */
export function nextUtcMidnight(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

/** Seconds from `now` to the next 00:00 UTC (at least 1). */
export function secondsUntilUtcMidnight(now: number): number {
  return Math.max(1, Math.ceil((nextUtcMidnight(now) - now) / 1000));
}

/** What an IP-lookup simulator counts for tests. */
export interface IpLookupStats extends SimStats {
  /** Every IP asked about, in arrival order (as written in the request). */
  ipsRequested: string[];
  /** Requests per IP asked about. */
  byIp: Map<string, number>;
  /** The most requests that arrived within any one second (rejected ones included). */
  maxPerSecond: number;
}

/** Keeps an IpLookupStats up to date as requests arrive. */
export class IpRequestCounter<S extends IpLookupStats = IpLookupStats> {
  readonly #recent: number[] = [];
  constructor(readonly stats: S) {}
  arrive(now: number, ip: string | null): void {
    const s = this.stats;
    s.requests++;
    s.requestTimes.push(now);
    this.#recent.push(now);
    while (this.#recent[0] <= now - 1000) this.#recent.shift();
    s.maxPerSecond = Math.max(s.maxPerSecond, this.#recent.length);
    if (ip !== null) {
      s.ipsRequested.push(ip);
      s.byIp.set(ip, (s.byIp.get(ip) ?? 0) + 1);
    }
  }
}

export function newIpLookupStats(): IpLookupStats {
  return { ...newStats(), ipsRequested: [], byIp: new Map(), maxPerSecond: 0 };
}

/** A URL path segment decoded; a malformed %-escape stays as written (it is then simply a bad key). */
export function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Carry out an injected fault (not 'none') after the usual latency, recording what was answered. */
export async function serveFault(
  action: FaultAction,
  res: ServerResponse,
  body500: unknown,
  at: { stats: SimStats; arrived: number; key?: string; latencyMs?: number },
): Promise<void> {
  const status = action === 'error500' ? 500 : action === 'malformed' ? 200 : action === 'throttle' ? 429 : null;
  if (status !== null) {
    await sleep(at.latencyMs ?? 0);
    recordAnswer(at.stats, at.arrived, status, at.key);
  }
  applyFault(action, res, body500);
}
