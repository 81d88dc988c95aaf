/**
 * DShield / SANS ISC: `GET {url}/api/ip/{ip}?json` (docs/PROTOCOLS.md §6, §10.3). No key; ISC asks for
 * contact details in the User-Agent (generic ones get 403) and at most one request a second, so the
 * source is used only when `--dshield-email` is set, and a 403 turns it off for the run.
 */
import { apiUrl, email, num } from '../../config/setting.js';
import type { HttpAnswer } from '../rate-limit.js';
import { boundedText, defineSource, finiteNumber, parseJsonText, perSecond, throttleVerdict, type HttpHandle } from './source.js';
import { DAY_SECONDS, type SourceResult } from './types.js';

export interface DShieldValue {
  /** ISC has reports about the address (counts or threat feeds). */
  reported: boolean;
  /** Reports (packets blocked from the address) and attacks (distinct targets). */
  count: number | null;
  attacks: number | null;
  /** YYYY-MM-DD */
  first_reported: string | null;
  last_reported: string | null;
  updated: string | null;
  /** Names of the ISC threat feeds that list the address. */
  threat_feeds: string[];
  as: number | null;
  as_name: string | null;
  as_country: string | null;
  network: string | null;
}

export const DSHIELD_TTL_SECONDS = 7 * DAY_SECONDS;
const VERSION = 'isc-api-ip';
const MAX_FEEDS = 50;

function read(ip: string, a: HttpAnswer): SourceResult<DShieldValue> {
  const at = new Date().toISOString();
  const fail = (reason: string): SourceResult<DShieldValue> => ({ key: ip, status: 'error', value: null, fetchedAt: at, ttlSeconds: 0, reason });
  if (a.status !== 200) return fail(`DShield: unexpected HTTP ${a.status}`);
  const body = parseJsonText(a.text) as { ip?: unknown; error?: unknown } | undefined;
  if (!body || typeof body !== 'object' || !body.ip || typeof body.ip !== 'object') {
    return fail(body && typeof body.error === 'string' ? `DShield: ${body.error.slice(0, 100)}` : 'DShield sent an unreadable answer');
  }
  const b = body.ip as Record<string, unknown>;
  const feeds = b.threatfeeds && typeof b.threatfeeds === 'object' && !Array.isArray(b.threatfeeds)
    ? Object.keys(b.threatfeeds).slice(0, MAX_FEEDS).map((k) => k.slice(0, 64)) : [];
  const value: DShieldValue = {
    reported: finiteNumber(b.count) !== null || finiteNumber(b.attacks) !== null || feeds.length > 0,
    count: finiteNumber(b.count),
    attacks: finiteNumber(b.attacks),
    first_reported: boundedText(b.mindate, 32),
    last_reported: boundedText(b.maxdate, 32),
    updated: boundedText(b.updated, 32),
    threat_feeds: feeds,
    as: finiteNumber(b.as),
    as_name: boundedText(b.asname),
    as_country: boundedText(b.ascountry, 8),
    network: boundedText(b.network, 64),
  };
  // Unreported is a negative answer worth caching as long as a report.
  return { key: ip, status: value.reported ? 'hit' : 'miss', value, fetchedAt: at, ttlSeconds: DSHIELD_TTL_SECONDS };
}

export const dshieldSource = defineSource({
  name: 'dshield',
  title: 'DShield',
  keys: 'ip',
  network: true,
  defaultOn: true,
  settings: {
    dshieldUrl: { flag: 'dshieldUrl', env: 'COWRIE_DSHIELD_URL', file: 'dshield.url', def: 'https://isc.sans.edu', ...apiUrl, help: 'DShield/ISC API base URL', arg: '<url>' },
    dshieldRate: { flag: 'dshieldRate', env: 'COWRIE_DSHIELD_RATE', file: 'dshield.rate', def: 1, ...num(0.01), help: 'DShield requests per second for all workers on the database together, never exceeded (ISC asks bots for at most 1)', arg: '<n>' },
    dshieldEmail: { flag: 'dshieldEmail', env: 'COWRIE_DSHIELD_EMAIL', file: 'dshield.email', ...email, help: 'your contact address, sent in the User-Agent as ISC asks; DShield is used only when set', arg: '<address>' },
  },
  // Not asking ISC without a contact address is the polite default, not a debt.
  requires: { setting: 'dshieldEmail', shown: '--dshield-email', whenMissing: 'off', until: 'a contact address' },
  ttl: { hitSeconds: DSHIELD_TTL_SECONDS, missSeconds: DSHIELD_TTL_SECONDS },
  limits: (o) => ({
    rate: perSecond(o.dshieldRate), concurrency: Math.min(4, Math.max(1, Math.ceil(o.dshieldRate))), batchSize: 1, dailyQuota: null,
    retries: 3, throttleRetries: 8, backoffMs: 1000, maxRetryAfterMs: 60_000, timeoutMs: 10_000, maxFailuresInRow: 10,
  }),
  open: (o): HttpHandle<DShieldValue> => {
    const base = o.dshieldUrl.replace(/\/+$/, '');
    const headers = { 'User-Agent': `cowrie-enrich/0.1.0 (+mailto:${o.dshieldEmail ?? ''})`, Accept: 'application/json' };
    return {
      kind: 'http',
      secrets: [],
      version: VERSION,
      credential: 'the User-Agent',
      request: ([ip]) => ({ url: `${base}/api/ip/${encodeURIComponent(ip)}?json`, headers }),
      judge: (a) => {
        if (a.status === 401 || a.status === 403) return { kind: 'auth' };
        if (a.status === 429) return throttleVerdict(a);
        if (a.status >= 500) return { kind: 'transient', reason: `HTTP ${a.status}` };
        return { kind: 'done' };
      },
      read: ([ip], a) => [read(ip, a)],
      close: () => {},
    };
  },
});
