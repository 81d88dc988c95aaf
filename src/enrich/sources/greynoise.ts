/**
 * GreyNoise: Community API v3 (`GET /v3/community/{ip}`, one IP per request) or Enterprise quick
 * check (`POST /v2/noise/multi/quick`, up to 1,000 IPs per request); docs/PROTOCOLS.md §2.
 * The source builds requests and reads answers; src/enrich/runner.ts sends them under the
 * declared limits (never more than `--greynoise-rate` requests in any one-second window).
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { UsageError } from '../../errors.js';
import { apiKey, apiUrl, int, num } from '../../config/setting.js';
import { isPublicIp } from '../ip-scope.js';
import type { Logger } from '../../log.js';
import { parseRetryAfter } from '../rate-limit.js';
import type { AnswerVerdict, HttpAnswer, LookupSummary, OnResult } from '../rate-limit.js';
import { createHttpEngine } from '../runner.js';
import { defineSource, perSecond, type HttpHandle, type SourceLimits } from './source.js';
import { DAY_SECONDS } from './types.js';
import type { QuotaGate, SourceResult } from './types.js';
export interface GreyNoiseValue {
  /** true: GreyNoise has seen the IP scanning (noise) or knows it as a business service (riot). */
  observed: boolean;
  noise: boolean | null;
  riot: boolean | null;
  classification: string | null;
  name: string | null;
  /** YYYY-MM-DD */
  last_seen: string | null;
  link: string | null;
}

export type GreyNoiseMode = 'community' | 'enterprise';

export interface GreyNoiseClientOptions {
  /** Base URL, e.g. https://api.greynoise.io (no trailing path). */
  url: string;
  apiKey: string;
  ratePerSecond?: number;
  mode?: GreyNoiseMode;
  /** Requests in flight; default ratePerSecond capped at 16. */
  concurrency?: number;
  timeoutMs?: number;
  /** Extra attempts after a 5xx, network error or timeout. */
  retries?: number;
  quota: QuotaGate;
  logger?: Logger;
  userAgent?: string;
  /** First retry backoff (doubles each time); default 1000 ms. */
  backoffMs?: number;
  /** Added to the one-second window on our side, for extra caution; default 0. */
  windowMarginMs?: number;
  /** Enterprise: IPs per request, at most 1,000. */
  chunkSize?: number;
  /** Longest Retry-After honoured before an IP is left pending; default 60 s. */
  maxRetryAfterMs?: number;
}

export interface GreyNoiseClient {
  readonly mode: GreyNoiseMode;
  /** HTTP requests sent so far by this client (retries included), for live status. */
  readonly requests: number;
  lookup(ips: string[], onResult: OnResult<GreyNoiseValue>, signal?: AbortSignal): Promise<LookupSummary>;
}

export const GREYNOISE_TTL_SECONDS = 7 * DAY_SECONDS;
export const GREYNOISE_MAX_CHUNK = 1000;
const COMMUNITY_VERSION = 'community-v3';
const ENTERPRISE_VERSION = 'quick-v2';
const DEFAULT_USER_AGENT = 'cowrie-enrich/0.1.0';

/**
 * True for a public IPv4 address: the only kind GreyNoise is asked about (it answers 400 for the
 * rest, and looks up no IPv6). Public means ipScope's ranges, the same for every source.
 */
export function isGreyNoiseRoutable(ip: string): boolean {
  return isIPv4(ip) && isPublicIp(ip);
}

/** GreyNoise calls a user-agent that says who is asking polite; the key goes in `key`. */
function handle(o: { url: string; apiKey: string; mode: GreyNoiseMode; userAgent?: string }): HttpHandle<GreyNoiseValue> {
  const key = o.apiKey;
  // A key undici cannot put in a header would be echoed in its error message: refuse it here.
  if (!key || !/^[\x21-\x7e]+$/.test(key)) throw new UsageError('The GreyNoise API key is empty or contains spaces or control characters');
  const base = o.url.replace(/\/+$/, '');
  const headers = { key, 'User-Agent': o.userAgent ?? DEFAULT_USER_AGENT, Accept: 'application/json' };
  const community = o.mode === 'community';
  return {
    kind: 'http',
    secrets: [key],
    version: community ? COMMUNITY_VERSION : ENTERPRISE_VERSION,
    local: (ip) => (routable(ip) ? null : result(ip, 'miss', null, 0, 'not sent: IPv6/non-routable')),
    request: (ips) => community
      ? { url: `${base}/v3/community/${ips[0]}`, headers }
      // One Search per request, whatever the number of IPs in it (docs/PROTOCOLS.md §2.3).
      : { url: `${base}/v2/noise/multi/quick`, method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify({ ips }) },
    judge,
    read: (ips, a) => (community ? [communityResult(ips[0], a)] : enterpriseResults(ips, a)),
    close: () => {},
  };
}

const routableNets = new Map<string, boolean>();
/** isGreyNoiseRoutable per /24 (every non-routable range is a /24 or wider): one check per network, not per IP. */
function routable(ip: string): boolean {
  if (ip.includes(':')) return false;
  const net = ip.slice(0, ip.lastIndexOf('.'));
  let r = routableNets.get(net);
  if (r === undefined) {
    if (routableNets.size >= 100_000) routableNets.clear();
    routableNets.set(net, (r = isGreyNoiseRoutable(ip)));
  }
  return r;
}

function judge(a: HttpAnswer): AnswerVerdict {
  if (a.status === 401 || a.status === 403) return { kind: 'auth' };
  if (a.status === 429) {
    // The community plan answers its daily limit with a 429 whose message says "daily".
    if (/daily|per day/i.test(a.text)) return { kind: 'quota' };
    return { kind: 'throttle', waitMs: parseRetryAfter(a.headers.get('retry-after')) };
  }
  if (a.status >= 500) return { kind: 'transient', reason: `HTTP ${a.status}` };
  return { kind: 'done' };
}

function limits(o: { rate: number; mode: GreyNoiseMode; dailyQuota: number; concurrency?: number; chunkSize?: number }, extra: Partial<SourceLimits> = {}): SourceLimits {
  return {
    rate: perSecond(o.rate),
    concurrency: o.concurrency ?? Math.min(16, Math.max(1, Math.ceil(o.rate))),
    batchSize: o.mode === 'community' ? 1 : Math.max(1, Math.min(GREYNOISE_MAX_CHUNK, o.chunkSize ?? GREYNOISE_MAX_CHUNK)),
    dailyQuota: o.dailyQuota,
    retries: 3, throttleRetries: 8, backoffMs: 1000, maxRetryAfterMs: 60_000, timeoutMs: 10_000,
    maxFailuresInRow: 10,
    ...extra,
  };
}

export const greynoiseSource = defineSource({
  name: 'greynoise',
  title: 'GreyNoise',
  keys: 'ip',
  network: true,
  defaultOn: true,
  settings: {
    greynoiseUrl: { flag: 'greynoiseUrl', env: 'COWRIE_GREYNOISE_URL', file: 'greynoise.url', def: 'https://api.greynoise.io', ...apiUrl, help: 'GreyNoise API base URL', arg: '<url>' },
    greynoiseKey: { env: 'GREYNOISE_API_KEY', file: 'greynoise.api_key', ...apiKey },
    greynoiseRate: { flag: 'greynoiseRate', env: 'COWRIE_GREYNOISE_RATE', file: 'greynoise.rate', def: 10, ...num(0.01), help: 'GreyNoise requests per second for all workers on the database together, never exceeded', arg: '<n>' },
    greynoiseDailyQuota: { flag: 'greynoiseDailyQuota', env: 'COWRIE_GREYNOISE_DAILY_QUOTA', file: 'greynoise.daily_quota', def: 10_000, ...int(0), help: 'GreyNoise calls per UTC day, shared through the database', arg: '<n>' },
    greynoiseMode: { flag: 'greynoiseMode', env: 'COWRIE_GREYNOISE_MODE', file: 'greynoise.mode', def: 'community', schema: z.enum(['community', 'enterprise']), expect: 'community or enterprise', help: 'community (one IP per request) or enterprise (1,000 per request)', arg: '<mode>' },
  },
  requires: { setting: 'greynoiseKey', shown: 'GREYNOISE_API_KEY', whenMissing: 'pending', until: 'a key' },
  // IPv6 and non-routable IPv4 are answered here (GreyNoise looks up neither).
  answeredLocally: (ip) => !routable(ip),
  ttl: { hitSeconds: GREYNOISE_TTL_SECONDS, missSeconds: GREYNOISE_TTL_SECONDS },
  limits: (o) => limits({ rate: o.greynoiseRate, mode: o.greynoiseMode, dailyQuota: o.greynoiseDailyQuota }),
  // IPv6 is answered here (GreyNoise looks up none), so every public address is owed an answer.
  columns: {
    isScanner: {
      precedence: 1,
      from: (doc) => {
        const gn = doc.greynoise as Partial<GreyNoiseValue> | undefined;
        return gn && typeof gn.noise === 'boolean' ? gn.noise : gn?.observed === false ? false : null;
      },
    },
  },
  open: (o) => handle({ url: o.greynoiseUrl, apiKey: o.greynoiseKey ?? '', mode: o.greynoiseMode }),
});

/**
 * A GreyNoise client on its own (no database): the source's protocol driven by the runner's
 * engine. The refresh uses the runner directly; this serves tests and one-off lookups.
 */
export function createGreyNoiseClient(options: GreyNoiseClientOptions): GreyNoiseClient {
  const mode = options.mode ?? 'community';
  const rate = options.ratePerSecond ?? 10;
  if (!(rate > 0)) throw new UsageError('--greynoise-rate must be a positive number');
  const h = handle({ url: options.url, apiKey: options.apiKey, mode, userAgent: options.userAgent });
  const engine = createHttpEngine(greynoiseSource, h, limits({ rate, mode, dailyQuota: 0, concurrency: options.concurrency, chunkSize: options.chunkSize }, {
    ...(options.retries !== undefined ? { retries: options.retries } : {}),
    ...(options.backoffMs !== undefined ? { backoffMs: options.backoffMs } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.maxRetryAfterMs !== undefined ? { maxRetryAfterMs: options.maxRetryAfterMs } : {}),
  }), { quota: options.quota, logger: options.logger, windowMarginMs: options.windowMarginMs, failedStatus: 'pending' });
  return {
    mode,
    lookup: (ips, onResult, signal) => engine.lookup(ips, onResult, signal),
    get requests() {
      return engine.requests;
    },
  };
}

function result(
  key: string,
  status: SourceResult<GreyNoiseValue>['status'],
  value: GreyNoiseValue | null,
  ttlSeconds: number,
  reason?: string,
): SourceResult<GreyNoiseValue> {
  const r: SourceResult<GreyNoiseValue> = { key, status, value, fetchedAt: new Date().toISOString(), ttlSeconds };
  if (reason !== undefined) r.reason = reason;
  return r;
}

const NOT_OBSERVED: GreyNoiseValue = {
  observed: false,
  noise: false,
  riot: false,
  classification: null,
  name: null,
  last_seen: null,
  link: null,
};

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);

function communityResult(ip: string, a: HttpAnswer): SourceResult<GreyNoiseValue> {
  if (a.status === 200) {
    const body = parseJson(a.text);
    if (!body || typeof body !== 'object') return result(ip, 'error', null, 0, 'GreyNoise sent an unreadable answer');
    const b = body as Record<string, unknown>;
    const value: GreyNoiseValue = {
      observed: true,
      noise: bool(b.noise),
      riot: bool(b.riot),
      classification: str(b.classification),
      name: str(b.name),
      last_seen: str(b.last_seen),
      link: str(b.link),
    };
    return result(ip, 'hit', value, GREYNOISE_TTL_SECONDS);
  }
  // 404 is GreyNoise's normal "never seen": a negative answer worth caching.
  if (a.status === 404) return result(ip, 'miss', { ...NOT_OBSERVED }, GREYNOISE_TTL_SECONDS);
  if (a.status === 400) return result(ip, 'miss', null, GREYNOISE_TTL_SECONDS, 'GreyNoise: not a valid routable IPv4 address');
  return result(ip, 'error', null, 0, `GreyNoise: unexpected HTTP ${a.status}`);
}

function enterpriseResults(chunk: string[], a: HttpAnswer): Array<SourceResult<GreyNoiseValue>> {

  const body = a.status === 200 ? parseJson(a.text) : undefined;
  if (!Array.isArray(body)) {
    const why = a.status === 200 ? 'GreyNoise sent an unreadable answer' : `GreyNoise: unexpected HTTP ${a.status}`;
    return chunk.map((ip) => result(ip, 'error', null, 0, why));
  }
  const byIp = new Map<string, Record<string, unknown>>();
  for (const item of body) {
    if (item && typeof item === 'object' && typeof (item as { ip?: unknown }).ip === 'string') {
      byIp.set((item as { ip: string }).ip, item as Record<string, unknown>);
    }
  }
  return chunk.map((ip) => {
    const item = byIp.get(ip);
    if (!item) return result(ip, 'error', null, 0, 'GreyNoise: IP missing from the answer');
    if (item.code === '0x07') return result(ip, 'miss', null, GREYNOISE_TTL_SECONDS, 'GreyNoise: invalid IP');
    const noise = bool(item.noise) ?? false;
    const riot = bool(item.riot) ?? false;
    if (!noise && !riot) return result(ip, 'miss', { ...NOT_OBSERVED }, GREYNOISE_TTL_SECONDS);
    // The quick check gives no verdict, name or date: those stay null.
    return result(ip, 'hit', { ...NOT_OBSERVED, observed: true, noise, riot }, GREYNOISE_TTL_SECONDS);
  });
}
