/**
 * VirusTotal v3 file-report client: `GET {url}/api/v3/files/{sha256}` with `x-apikey`
 * (docs/PROTOCOLS.md §5). Public keys allow 4 requests a minute, so every request goes through
 * one sliding-window limiter; each answer is handed to `onResult` as soon as it arrives.
 */
import { UsageError } from '../../errors.js';
import { silentLogger } from '../../log.js';
import type { Logger } from '../../log.js';
import { callThrottled, parseRetryAfter, runPool, SlidingWindowLimiter } from '../rate-limit.js';
import type { AnswerVerdict, HttpAnswer, LookupSummary, OnResult } from '../rate-limit.js';
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

export function createVirusTotalClient(options: VirusTotalClientOptions): VirusTotalClient {
  const apiKey = options.apiKey;
  if (!apiKey || !/^[\x21-\x7e]+$/.test(apiKey)) throw new UsageError('The VirusTotal API key is empty or contains spaces or control characters');
  const rate = options.ratePerMinute ?? 4;
  if (!(rate >= 1)) throw new UsageError('The VirusTotal rate must be at least 1 request per minute');
  const windowMs = options.windowMs ?? 60_000;
  const limiter = new SlidingWindowLimiter({ limit: Math.floor(rate), windowMs: windowMs + (options.windowMarginMs ?? 0) });
  const base = options.url.replace(/\/+$/, '');
  const logger = options.logger ?? silentLogger;
  const headers = { 'x-apikey': apiKey, 'User-Agent': options.userAgent ?? 'cowrie-enrich/0.1.0', Accept: 'application/json' };
  const redact = (text: string): string => text.split(apiKey).join('***');
  let authError: string | undefined;
  let quotaExhausted = false;

  const judge = (a: HttpAnswer): AnswerVerdict => {
    if (a.status === 401 || a.status === 403) return { kind: 'auth' };
    if (a.status === 429) {
      if (errorCode(a.text) === 'QuotaExceededError') return { kind: 'quota' };
      // TooManyRequestsError: someone else shares the key; wait out a whole window.
      return { kind: 'throttle', waitMs: parseRetryAfter(a.headers.get('retry-after')) ?? windowMs };
    }
    if (a.status >= 500) return { kind: 'transient', reason: `HTTP ${a.status}${codeSuffix(a.text)}` };
    return { kind: 'done' };
  };

  async function lookup(hashes: string[], onResult: OnResult<VirusTotalValue>, signal?: AbortSignal): Promise<LookupSummary> {
    let sent = 0;
    let pending = 0;
    const wasExhausted = quotaExhausted;
    const deliver = async (r: SourceResult<VirusTotalValue>): Promise<void> => {
      if (r.status === 'pending') pending++;
      if (r.reason) r.reason = redact(r.reason);
      await onResult(r);
    };
    const sendable: string[] = [];
    for (const hash of new Set(hashes)) {
      if (SHA256.test(hash)) sendable.push(hash);
      else await deliver(result(hash, 'error', null, 0, 'not a SHA-256'));
    }
    const stopReason = (): string =>
      authError ? 'VirusTotal off for this run: API key rejected' : 'VirusTotal daily quota spent';

    await runPool(
      sendable,
      options.concurrency ?? Math.min(4, Math.floor(rate)),
      async (hash, s) => {
        const outcome = await callThrottled({
          limiter,
          quota: options.quota,
          retries: options.retries ?? 2,
          // At 4 requests a minute a retry that waits for a slot holds up every other hash for up
          // to a window: a failed hash is retried only when a slot is free, else left 'failed'
          // for the next run.
          retryOnlyWhenFree: true,
          throttleRetries: 5,
          backoffMs: options.backoffMs ?? 2000,
          maxWaitMs: options.maxRetryAfterMs ?? 120_000,
          timeoutMs: options.timeoutMs ?? 20_000,
          signal: s,
          isStopped: () => authError !== undefined || quotaExhausted,
          onSend: () => void sent++,
          send: (rs) => fetch(`${base}/api/v3/files/${hash.toLowerCase()}`, { headers, redirect: 'error', signal: rs }),
          judge,
          onRetry: (reason, waitMs) => logger.debug(redact(`VirusTotal ${hash}: ${reason}; retrying in ${waitMs} ms`)),
        });
        switch (outcome.kind) {
          case 'done':
            return deliver(fileResult(hash, outcome.answer));
          case 'failed':
            return deliver(result(hash, 'error', null, 0, `VirusTotal: ${outcome.reason}`));
          case 'auth':
            if (!authError) {
              authError = `VirusTotal rejected the API key (HTTP ${outcome.answer.status}${codeSuffix(outcome.answer.text)})`;
              logger.error(`${authError}; VirusTotal is off for the rest of this run`);
            }
            break;
          case 'quota':
            quotaExhausted = true;
            break;
          case 'stopped':
            break;
        }
        return deliver({ ...result(hash, 'pending', null, 0, stopReason()), stopped: true });
      },
      signal,
    );
    if (quotaExhausted && !wasExhausted) logger.warn(`VirusTotal daily quota spent; ${pending} files left pending for the next run`);
    return { sent, authError, quotaExhausted, pending };
  }

  return { lookup };
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
