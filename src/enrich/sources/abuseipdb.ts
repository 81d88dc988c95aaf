/**
 * AbuseIPDB API v2 `check`: `GET {url}/api/v2/check?ipAddress={ip}&maxAgeInDays=90` with the key in
 * a `Key` header (docs/PROTOCOLS.md §10.1). The free plan allows 1,000 checks a UTC day: counted in
 * the database (shared by every process) and cross-checked with the `X-RateLimit-Remaining` header.
 */
import { apiKey, apiUrl, int, num } from '../../config/setting.js';
import type { HttpAnswer } from '../rate-limit.js';
import { boundedText, defineSource, finiteNumber, parseJsonText, perSecond, throttleVerdict, type HttpHandle } from './source.js';
import { DAY_SECONDS, type SourceResult } from './types.js';

export interface AbuseIpdbValue {
  /** 0–100: how sure AbuseIPDB's users are that the address is abusive. */
  abuse_confidence_score: number | null;
  /** Reports in the last 90 days, and the distinct users who sent them. */
  total_reports: number | null;
  distinct_reporters: number | null;
  /** ISO-8601; may be set even when total_reports is 0 (an older report). */
  last_reported_at: string | null;
  usage_type: string | null;
  isp: string | null;
  domain: string | null;
  country_code: string | null;
  is_tor: boolean | null;
  is_whitelisted: boolean | null;
}

export const ABUSEIPDB_TTL_SECONDS = DAY_SECONDS;
/** The window the reports are counted over (AbuseIPDB's default is 30 days). */
const MAX_AGE_DAYS = 90;
const VERSION = 'v2-check';

const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);

function read(ip: string, a: HttpAnswer): SourceResult<AbuseIpdbValue> {
  const at = new Date().toISOString();
  const fail = (reason: string): SourceResult<AbuseIpdbValue> => ({ key: ip, status: 'error', value: null, fetchedAt: at, ttlSeconds: 0, reason });
  const body = parseJsonText(a.text) as { data?: unknown; errors?: Array<{ detail?: unknown }> } | undefined;
  if (a.status !== 200) {
    const detail = body?.errors?.[0]?.detail;
    return fail(`AbuseIPDB: HTTP ${a.status}${typeof detail === 'string' ? ` ${detail.slice(0, 120)}` : ''}`);
  }
  if (!body || !body.data || typeof body.data !== 'object') return fail('AbuseIPDB sent an unreadable answer');
  const d = body.data as Record<string, unknown>;
  const value: AbuseIpdbValue = {
    abuse_confidence_score: finiteNumber(d.abuseConfidenceScore),
    total_reports: finiteNumber(d.totalReports),
    distinct_reporters: finiteNumber(d.numDistinctUsers),
    last_reported_at: boundedText(d.lastReportedAt, 40),
    usage_type: boundedText(d.usageType, 80),
    isp: boundedText(d.isp),
    domain: boundedText(d.domain),
    country_code: boundedText(d.countryCode, 8),
    is_tor: bool(d.isTor),
    is_whitelisted: bool(d.isWhitelisted),
  };
  // Never reported in the window and a zero score: "nothing known", cached as long as a hit.
  const known = (value.total_reports ?? 0) > 0 || (value.abuse_confidence_score ?? 0) > 0;
  return { key: ip, status: known ? 'hit' : 'miss', value, fetchedAt: at, ttlSeconds: ABUSEIPDB_TTL_SECONDS };
}

export const abuseipdbSource = defineSource({
  name: 'abuseipdb',
  title: 'AbuseIPDB',
  keys: 'ip',
  network: true,
  defaultOn: true,
  settings: {
    abuseipdbUrl: { flag: 'abuseipdbUrl', env: 'COWRIE_ABUSEIPDB_URL', file: 'abuseipdb.url', def: 'https://api.abuseipdb.com', ...apiUrl, help: 'AbuseIPDB API base URL', arg: '<url>' },
    abuseipdbKey: { env: 'ABUSEIPDB_API_KEY', file: 'abuseipdb.api_key', ...apiKey },
    abuseipdbRate: { flag: 'abuseipdbRate', env: 'COWRIE_ABUSEIPDB_RATE', file: 'abuseipdb.rate', def: 1, ...num(0.01), help: 'AbuseIPDB requests per second for all workers on the database together, never exceeded', arg: '<n>' },
    abuseipdbDailyQuota: { flag: 'abuseipdbDailyQuota', env: 'COWRIE_ABUSEIPDB_DAILY_QUOTA', file: 'abuseipdb.daily_quota', def: 1000, ...int(0), help: 'AbuseIPDB checks per UTC day, shared through the database (free plan: 1,000)', arg: '<n>' },
  },
  // Used once a key is configured; without one it is simply not asked.
  requires: { setting: 'abuseipdbKey', shown: 'ABUSEIPDB_API_KEY', whenMissing: 'off', until: 'a key' },
  ttl: { hitSeconds: ABUSEIPDB_TTL_SECONDS, missSeconds: ABUSEIPDB_TTL_SECONDS },
  limits: (o) => ({
    rate: perSecond(o.abuseipdbRate), concurrency: Math.min(4, Math.max(1, Math.ceil(o.abuseipdbRate))), batchSize: 1, dailyQuota: o.abuseipdbDailyQuota,
    retries: 3, throttleRetries: 8, backoffMs: 1000, maxRetryAfterMs: 60_000, timeoutMs: 10_000, maxFailuresInRow: 10,
  }),
  open: (o): HttpHandle<AbuseIpdbValue> => {
    const key = o.abuseipdbKey ?? '';
    const base = o.abuseipdbUrl.replace(/\/+$/, '');
    // Without Accept: application/json errors come back as HTML pages.
    const headers = { Key: key, Accept: 'application/json', 'User-Agent': 'cowrie-enrich/0.1.0' };
    return {
      kind: 'http',
      secrets: [key],
      version: VERSION,
      request: ([ip]) => ({ url: `${base}/api/v2/check?ipAddress=${encodeURIComponent(ip)}&maxAgeInDays=${MAX_AGE_DAYS}`, headers }),
      judge: (a) => {
        if (a.status === 401 || a.status === 403) return { kind: 'auth' };
        // The daily limit: AbuseIPDB's own count says none left (a burst 429 leaves some).
        if (a.status === 429) return remainingOf(a) === 0 ? { kind: 'quota' } : throttleVerdict(a);
        if (a.status >= 500) return { kind: 'transient', reason: `HTTP ${a.status}` };
        return { kind: 'done' };
      },
      remaining: remainingOf,
      read: ([ip], a) => [read(ip, a)],
      close: () => {},
    };
  },
});

/** `X-RateLimit-Remaining`: checks left today by AbuseIPDB's count; null when absent. */
function remainingOf(a: HttpAnswer): number | null {
  const v = a.headers.get('x-ratelimit-remaining');
  return v !== null && /^\d{1,9}$/.test(v.trim()) ? Number(v.trim()) : null;
}
