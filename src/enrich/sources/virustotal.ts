/**
 * VirusTotal v3 file reports: `GET {url}/api/v3/files/{sha256}` with `x-apikey`
 * (docs/PROTOCOLS.md §5). Public keys allow 4 requests a minute; the runner keeps to the
 * declared rate and quota, this file builds requests and reads answers.
 */
import { UsageError } from '../../errors.js';
import { apiKey, apiUrl, int, num as atLeast } from '../../config/setting.js';
import type { Logger } from '../../log.js';
import { parseRetryAfter } from '../rate-limit.js';
import type { AnswerVerdict, HttpAnswer, LookupSummary, OnResult } from '../rate-limit.js';
import { createHttpEngine } from '../runner.js';
import { defineSource, type HttpHandle, type SourceLimits } from './source.js';
import { DAY_SECONDS } from './types.js';
import type { QuotaGate, SourceResult } from './types.js';
export interface VirusTotalValue {
  malicious: number;
  suspicious: number;
  harmless: number;
  undetected: number;
  /** popular_threat_classification.suggested_threat_label, e.g. "trojan.mirai/gafgyt". */
  label: string | null;
  /** ISO-8601 UTC. */
  last_analysis_date: string | null;
  meaningful_name: string | null;
  type_description: string | null;
  size: number | null;
  sha256: string;
  /** The answer's attributes without per-engine results and oversized fields. */
  trimmed: Record<string, unknown>;
}

export interface VirusTotalClientOptions {
  /** Base URL, e.g. https://www.virustotal.com */
  url: string;
  apiKey: string;
  ratePerMinute?: number;
  /** Length of the rate window; 60,000 ms except in tests. */
  windowMs?: number;
  /** Added to the window on our side, for extra caution; default 0. */
  windowMarginMs?: number;
  timeoutMs?: number;
  /** Extra attempts after a 5xx, network error or timeout. */
  retries?: number;
  quota: QuotaGate;
  logger?: Logger;
  userAgent?: string;
  /** Requests in flight; default min(ratePerMinute, 4). */
  concurrency?: number;
  /** First retry backoff (doubles each time); default 2,000 ms. */
  backoffMs?: number;
  /** Longest wait honoured after a 429 before a file is given up for this run; default 2 min. */
  maxRetryAfterMs?: number;
}

export interface VirusTotalClient {
  lookup(hashes: string[], onResult: OnResult<VirusTotalValue>, signal?: AbortSignal): Promise<LookupSummary>;
}

export const VIRUSTOTAL_TTL_SECONDS = 30 * DAY_SECONDS;
/** VirusTotal has never seen the file: ask again tomorrow. */
export const VIRUSTOTAL_MISS_TTL_SECONDS = DAY_SECONDS;
const VERSION = 'v3';
const SHA256 = /^[0-9a-f]{64}$/i;
const TRIM_FIELD_CHARS = 2000;
const TRIM_ARRAY_ITEMS = 20;

function handle(o: { url: string; apiKey: string; windowMs: number; userAgent?: string }): HttpHandle<VirusTotalValue> {
  const key = o.apiKey;
  if (!key || !/^[\x21-\x7e]+$/.test(key)) throw new UsageError('The VirusTotal API key is empty or contains spaces or control characters');
  const base = o.url.replace(/\/+$/, '');
  const headers = { 'x-apikey': key, 'User-Agent': o.userAgent ?? 'cowrie-enrich/0.1.0', Accept: 'application/json' };
  return {
    kind: 'http',
    secrets: [key],
    version: VERSION,
    invalid: (hash) => (SHA256.test(hash) ? null : 'not a SHA-256'),
    request: ([hash]) => ({ url: `${base}/api/v3/files/${hash.toLowerCase()}`, headers }),
    judge: (a: HttpAnswer): AnswerVerdict => {
      if (a.status === 401 || a.status === 403) return { kind: 'auth' };
      if (a.status === 429) {
        if (errorCode(a.text) === 'QuotaExceededError') return { kind: 'quota' };
        // TooManyRequestsError: someone else shares the key; wait out a whole window.
        return { kind: 'throttle', waitMs: parseRetryAfter(a.headers.get('retry-after')) ?? o.windowMs };
      }
      if (a.status >= 500) return { kind: 'transient', reason: `HTTP ${a.status}${codeSuffix(a.text)}` };
      return { kind: 'done' };
    },
    read: ([hash], a) => [fileResult(hash, a)],
    detail: (a) => codeSuffix(a.text),
    close: () => {},
  };
}

function limits(o: { ratePerMinute: number; windowMs: number; dailyQuota: number; concurrency?: number }, extra: Partial<SourceLimits> = {}): SourceLimits {
  return {
    rate: { perWindow: Math.floor(o.ratePerMinute), windowMs: o.windowMs },
    concurrency: o.concurrency ?? Math.min(4, Math.floor(o.ratePerMinute)),
    batchSize: 1,
    dailyQuota: o.dailyQuota,
    // At 4 requests a minute a retry that waits for a slot holds up every other hash for up to a
    // window: a failed hash is retried only when a slot is free, else left 'failed' for the next run.
    retries: 2, retryOnlyWhenFree: true, throttleRetries: 5, backoffMs: 2000, maxRetryAfterMs: 120_000, timeoutMs: 20_000,
    maxFailuresInRow: 10,
    ...extra,
  };
}

export const virustotalSource = defineSource({
  name: 'virustotal',
  title: 'VirusTotal',
  keys: 'sha256',
  network: true,
  defaultOn: true,
  settings: {
    virustotalUrl: { flag: 'virustotalUrl', env: 'COWRIE_VIRUSTOTAL_URL', file: 'virustotal.url', def: 'https://www.virustotal.com', ...apiUrl, help: 'VirusTotal API base URL', arg: '<url>' },
    virustotalKey: { env: 'VT_API_KEY', file: 'virustotal.api_key', ...apiKey },
    virustotalRate: { flag: 'virustotalRate', env: 'COWRIE_VIRUSTOTAL_RATE', file: 'virustotal.rate_per_minute', def: 4, ...atLeast(0.01), help: 'VirusTotal requests per minute for all workers on the database together, never exceeded', arg: '<n>' },
    virustotalDailyQuota: { flag: 'virustotalDailyQuota', env: 'COWRIE_VIRUSTOTAL_DAILY_QUOTA', file: 'virustotal.daily_quota', def: 500, ...int(0), help: 'VirusTotal calls per UTC day, shared through the database', arg: '<n>' },
  },
  requires: { setting: 'virustotalKey', shown: 'VT_API_KEY', whenMissing: 'pending', until: 'a key' },
  ttl: { hitSeconds: VIRUSTOTAL_TTL_SECONDS, missSeconds: VIRUSTOTAL_MISS_TTL_SECONDS },
  limits: (o) => limits({ ratePerMinute: o.virustotalRate, windowMs: 60_000, dailyQuota: o.virustotalDailyQuota }),
  open: (o) => handle({ url: o.virustotalUrl, apiKey: o.virustotalKey ?? '', windowMs: 60_000 }),
});

/** The source's protocol and limits with test overrides (a short window, a short backoff). */
export function virustotalParts(o: { url: string; apiKey: string | undefined; ratePerMinute: number; dailyQuota: number; windowMs?: number; backoffMs?: number }): { handle: HttpHandle<VirusTotalValue>; limits: SourceLimits } {
  const windowMs = o.windowMs ?? 60_000;
  if (!(o.ratePerMinute >= 1)) throw new UsageError('The VirusTotal rate must be at least 1 request per minute');
  return {
    handle: handle({ url: o.url, apiKey: o.apiKey ?? '', windowMs }),
    limits: limits({ ratePerMinute: o.ratePerMinute, windowMs, dailyQuota: o.dailyQuota }, o.backoffMs !== undefined ? { backoffMs: o.backoffMs } : {}),
  };
}

/** A VirusTotal client on its own (no database), for tests and one-off lookups. */
export function createVirusTotalClient(options: VirusTotalClientOptions): VirusTotalClient {
  const rate = options.ratePerMinute ?? 4;
  if (!(rate >= 1)) throw new UsageError('The VirusTotal rate must be at least 1 request per minute');
  const windowMs = options.windowMs ?? 60_000;
  const h = handle({ url: options.url, apiKey: options.apiKey, windowMs, userAgent: options.userAgent });
  const engine = createHttpEngine(virustotalSource, h, limits({ ratePerMinute: rate, windowMs, dailyQuota: 0, concurrency: options.concurrency }, {
    ...(options.retries !== undefined ? { retries: options.retries } : {}),
    ...(options.backoffMs !== undefined ? { backoffMs: options.backoffMs } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.maxRetryAfterMs !== undefined ? { maxRetryAfterMs: options.maxRetryAfterMs } : {}),
  }), { quota: options.quota, logger: options.logger, windowMarginMs: options.windowMarginMs });
  return { lookup: (hashes, onResult, signal) => engine.lookup(hashes, onResult, signal) };
}

function result(
  key: string,
  status: SourceResult<VirusTotalValue>['status'],
  value: VirusTotalValue | null,
  ttlSeconds: number,
  reason?: string,
): SourceResult<VirusTotalValue> {
  const r: SourceResult<VirusTotalValue> = { key, status, value, fetchedAt: new Date().toISOString(), version: VERSION, ttlSeconds };
  if (reason !== undefined) r.reason = reason;
  return r;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The `error.code` of a VirusTotal error body, or null. */
function errorCode(text: string): string | null {
  const body = parseJson(text) as { error?: { code?: unknown } } | undefined;
  const code = body?.error?.code;
  return typeof code === 'string' ? code : null;
}

function codeSuffix(text: string): string {
  const code = errorCode(text);
  return code && /^\w{1,60}$/.test(code) ? ` ${code}` : '';
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function fileResult(hash: string, a: HttpAnswer): SourceResult<VirusTotalValue> {
  if (a.status === 404) return result(hash, 'miss', null, VIRUSTOTAL_MISS_TTL_SECONDS, 'VirusTotal has never seen this file');
  if (a.status !== 200) return result(hash, 'error', null, 0, `VirusTotal: unexpected HTTP ${a.status}${codeSuffix(a.text)}`);
  const body = parseJson(a.text) as { data?: { attributes?: unknown } } | undefined;
  const attrs = body?.data?.attributes;
  if (!attrs || typeof attrs !== 'object') return result(hash, 'error', null, 0, 'VirusTotal sent an unreadable answer');
  const at = attrs as Record<string, unknown>;
  const stats = (at.last_analysis_stats ?? {}) as Record<string, unknown>;
  const ptc = at.popular_threat_classification as { suggested_threat_label?: unknown } | undefined;
  const date = typeof at.last_analysis_date === 'number' ? new Date(at.last_analysis_date * 1000).toISOString() : null;
  const value: VirusTotalValue = {
    malicious: num(stats.malicious),
    suspicious: num(stats.suspicious),
    harmless: num(stats.harmless),
    undetected: num(stats.undetected),
    label: str(ptc?.suggested_threat_label),
    last_analysis_date: date,
    meaningful_name: str(at.meaningful_name),
    type_description: str(at.type_description),
    size: typeof at.size === 'number' ? at.size : null,
    sha256: str(at.sha256) ?? hash.toLowerCase(),
    trimmed: trimAttributes(at),
  };
  return result(hash, 'hit', value, VIRUSTOTAL_TTL_SECONDS);
}

/**
 * Keep the report small enough to store per file: drop per-engine results, cut long
 * arrays, and leave out any single field whose JSON would exceed 2,000 characters.
 */
export function trimAttributes(attrs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'last_analysis_results') continue;
    const kept = Array.isArray(v) && v.length > TRIM_ARRAY_ITEMS ? v.slice(0, TRIM_ARRAY_ITEMS) : v;
    if (JSON.stringify(kept ?? null).length > TRIM_FIELD_CHARS) continue;
    out[k] = kept;
  }
  return out;
}
