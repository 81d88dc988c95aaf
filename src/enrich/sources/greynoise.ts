/**
 * GreyNoise client: Community API v3 (`GET /v3/community/{ip}`, one IP per request) or
 * Enterprise quick check (`POST /v2/noise/multi/quick`, up to 1,000 IPs per request).
 * See docs/PROTOCOLS.md §2. Every request goes through one shared sliding-window limiter, so
 * the server never sees more than `ratePerSecond` requests in any one-second window.
 * Results are handed to `onResult` as each answer arrives, so the caller can persist it
 * at once and a crash never pays twice for the same answer.
 */
import { isIPv4 } from 'node:net';
import { UsageError } from '../../errors.js';
import { isPublicIp } from '../ip-scope.js';
import { silentLogger } from '../../log.js';
import type { Logger } from '../../log.js';
import { callThrottled, parseRetryAfter, runPool, SlidingWindowLimiter } from '../rate-limit.js';
import type { AnswerVerdict, CallOutcome, HttpAnswer, LookupSummary, OnResult } from '../rate-limit.js';
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

export function createGreyNoiseClient(options: GreyNoiseClientOptions): GreyNoiseClient {
  const apiKey = options.apiKey;
  // A key undici cannot put in a header would be echoed in its error message: refuse it here.
  if (!apiKey || !/^[\x21-\x7e]+$/.test(apiKey)) throw new UsageError('The GreyNoise API key is empty or contains spaces or control characters');
  const mode = options.mode ?? 'community';
  const rate = options.ratePerSecond ?? 10;
  if (!(rate > 0)) throw new UsageError('--greynoise-rate must be a positive number');
  const chunkSize = Math.max(1, Math.min(GREYNOISE_MAX_CHUNK, options.chunkSize ?? GREYNOISE_MAX_CHUNK));
  const base = options.url.replace(/\/+$/, '');
  const logger = options.logger ?? silentLogger;
  const concurrency = options.concurrency ?? Math.min(16, Math.max(1, Math.ceil(rate)));
  // Below 1/s (e.g. 0.5) one request per 1/rate seconds keeps the same ceiling.
  const limiter = new SlidingWindowLimiter({
    limit: rate >= 1 ? Math.floor(rate) : 1,
    windowMs: (rate >= 1 ? 1000 : 1000 / rate) + (options.windowMarginMs ?? 0),
  });
  const headers = { key: apiKey, 'User-Agent': options.userAgent ?? DEFAULT_USER_AGENT, Accept: 'application/json' };
  const redact = (text: string): string => text.split(apiKey).join('***');
  // Stops outlive one lookup() call: a rejected key or a spent quota holds for the whole run.
  let authError: string | undefined;
  let quotaExhausted = false;
  let requests = 0;
  const stopReason = (): string =>
    authError ? 'GreyNoise off for this run: API key rejected' : 'GreyNoise daily quota spent';

  const judge = (a: HttpAnswer): AnswerVerdict => {
    if (a.status === 401 || a.status === 403) return { kind: 'auth' };
    if (a.status === 429) {
      // The community plan answers its daily limit with a 429 whose message says "daily".
      if (/daily|per day/i.test(a.text)) return { kind: 'quota' };
      return { kind: 'throttle', waitMs: parseRetryAfter(a.headers.get('retry-after')) };
    }
    if (a.status >= 500) return { kind: 'transient', reason: `HTTP ${a.status}` };
    return { kind: 'done' };
  };

  async function lookup(ips: string[], onResult: OnResult<GreyNoiseValue>, signal?: AbortSignal): Promise<LookupSummary> {
    let sent = 0;
    let pending = 0;
    const wasExhausted = quotaExhausted;
    const deliver = async (r: SourceResult<GreyNoiseValue>): Promise<void> => {
      if (r.status === 'pending') pending++;
      r.version = mode === 'community' ? COMMUNITY_VERSION : ENTERPRISE_VERSION;
      if (r.reason) r.reason = redact(r.reason);
      await onResult(r);
    };
    const sendable: string[] = [];
    for (const ip of new Set(ips)) {
      if (isGreyNoiseRoutable(ip)) sendable.push(ip);
      else await deliver({ ...result(ip, 'miss', null, 0, 'not sent: IPv6/non-routable'), local: true });
    }

    // Turns the end of one call into results for its IPs, or records why the run stops.
    const settle = async (keys: string[], outcome: CallOutcome, interpret: (a: HttpAnswer) => Promise<void>): Promise<void> => {
      switch (outcome.kind) {
        case 'done':
          return interpret(outcome.answer);
        case 'auth':
          if (!authError) {
            authError = `GreyNoise rejected the API key (HTTP ${outcome.answer.status})`;
            logger.error(`${authError}; GreyNoise is off for the rest of this run`);
          }
          break;
        case 'quota':
          quotaExhausted = true;
          break;
        case 'failed':
          for (const ip of keys) await deliver(result(ip, 'pending', null, 0, `GreyNoise: ${outcome.reason}`));
          return;
        case 'stopped':
          break;
      }
      for (const ip of keys) await deliver({ ...result(ip, 'pending', null, 0, stopReason()), stopped: true });
    };

    const call = (what: string, send: (s: AbortSignal) => Promise<Response>, units: number, s: AbortSignal): Promise<CallOutcome> =>
      callThrottled({
        limiter,
        quota: options.quota,
        quotaUnits: units,
        retries: options.retries ?? 3,
        throttleRetries: 8,
        backoffMs: options.backoffMs ?? 1000,
        maxWaitMs: options.maxRetryAfterMs ?? 60_000,
        timeoutMs: options.timeoutMs ?? 10_000,
        signal: s,
        isStopped: () => authError !== undefined || quotaExhausted,
        onSend: () => {
          sent++;
          requests++;
        },
        send,
        judge,
        onRetry: (reason, waitMs) => logger.debug(redact(`GreyNoise ${what}: ${reason}; retrying in ${waitMs} ms`)),
      });

    if (mode === 'community') {
      await runPool(
        sendable,
        concurrency,
        async (ip, s) => {
          const outcome = await call(
            ip,
            (rs) => fetch(`${base}/v3/community/${ip}`, { headers, redirect: 'error', signal: rs }),
            1,
            s,
          );
          await settle([ip], outcome, (a) => deliver(communityResult(ip, a)));
        },
        signal,
      );
    } else {
      const chunks: string[][] = [];
      for (let i = 0; i < sendable.length; i += chunkSize) chunks.push(sendable.slice(i, i + chunkSize));
      await runPool(
        chunks,
        concurrency,
        async (chunk, s) => {
          // One Search per request, whatever the number of IPs in it (docs/PROTOCOLS.md §2.3).
          const outcome = await call(
            `batch of ${chunk.length} IPs`,
            (rs) =>
              fetch(`${base}/v2/noise/multi/quick`, {
                method: 'POST',
                headers: { ...headers, 'Content-Type': 'application/json' },
                body: JSON.stringify({ ips: chunk }),
                redirect: 'error',
                signal: rs,
              }),
            1,
            s,
          );
          await settle(chunk, outcome, async (a) => {
            // Delivered together, so the caller can store a whole batch's answers in one write.
            await Promise.all(enterpriseResults(chunk, a).map(deliver));
          });
        },
        signal,
      );
    }
    if (quotaExhausted && !wasExhausted) logger.warn(`GreyNoise daily quota spent; ${pending} IPs left pending for the next run`);
    return { sent, authError, quotaExhausted, pending };
  }

  return {
    mode,
    lookup,
    get requests() {
      return requests;
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
