/**
 * Shodan InternetDB: `GET {url}/{ip}`, no key (docs/PROTOCOLS.md §10.2): open ports, hostnames,
 * CPEs, tags and vulnerabilities from Shodan's weekly scans. 404 means "nothing known", a normal
 * answer that is cached. Free for non-commercial use only, so it is off unless named in `--sources`.
 */
import { apiUrl, num } from '../../config/setting.js';
import type { HttpAnswer } from '../rate-limit.js';
import { boundedTexts, defineSource, parseJsonText, perSecond, throttleVerdict, type HttpHandle } from './source.js';
import { DAY_SECONDS, type SourceResult } from './types.js';

export interface InternetDbValue {
  /** Shodan has scan data for the address. */
  known: boolean;
  ports: number[];
  hostnames: string[];
  cpes: string[];
  tags: string[];
  vulns: string[];
}

/** Shodan refreshes InternetDB about once a week. */
export const INTERNETDB_TTL_SECONDS = 7 * DAY_SECONDS;
/** Nothing known: ask again sooner, a scan may find the host. */
export const INTERNETDB_MISS_TTL_SECONDS = DAY_SECONDS;
const VERSION = 'internetdb';
const NOTHING: InternetDbValue = { known: false, ports: [], hostnames: [], cpes: [], tags: [], vulns: [] };

function read(ip: string, a: HttpAnswer): SourceResult<InternetDbValue> {
  const at = new Date().toISOString();
  if (a.status === 404) return { key: ip, status: 'miss', value: { ...NOTHING }, fetchedAt: at, ttlSeconds: INTERNETDB_MISS_TTL_SECONDS };
  const fail = (reason: string): SourceResult<InternetDbValue> => ({ key: ip, status: 'error', value: null, fetchedAt: at, ttlSeconds: 0, reason });
  if (a.status !== 200) return fail(`InternetDB: unexpected HTTP ${a.status}`);
  const b = parseJsonText(a.text) as Record<string, unknown> | undefined;
  if (!b || typeof b !== 'object' || Array.isArray(b)) return fail('InternetDB sent an unreadable answer');
  const ports = Array.isArray(b.ports) ? b.ports.filter((p): p is number => Number.isInteger(p) && p >= 0 && p <= 65535).slice(0, 1000) : [];
  const value: InternetDbValue = {
    known: true, ports, hostnames: boundedTexts(b.hostnames), cpes: boundedTexts(b.cpes), tags: boundedTexts(b.tags, 50, 64), vulns: boundedTexts(b.vulns, 500, 32),
  };
  return { key: ip, status: 'hit', value, fetchedAt: at, ttlSeconds: INTERNETDB_TTL_SECONDS };
}

export const internetdbSource = defineSource({
  name: 'internetdb',
  title: 'InternetDB',
  keys: 'ip',
  network: true,
  // Free for non-commercial use only: the user opts in with --sources.
  defaultOn: false,
  settings: {
    internetdbUrl: { flag: 'internetdbUrl', env: 'COWRIE_INTERNETDB_URL', file: 'internetdb.url', def: 'https://internetdb.shodan.io', ...apiUrl, help: 'Shodan InternetDB base URL (free for non-commercial use only; add internetdb to --sources)', arg: '<url>' },
    internetdbRate: { flag: 'internetdbRate', env: 'COWRIE_INTERNETDB_RATE', file: 'internetdb.rate', def: 1, ...num(0.01), help: 'InternetDB requests per second for all workers on the database together, never exceeded', arg: '<n>' },
  },
  ttl: { hitSeconds: INTERNETDB_TTL_SECONDS, missSeconds: INTERNETDB_MISS_TTL_SECONDS },
  limits: (o) => ({
    rate: perSecond(o.internetdbRate), concurrency: Math.min(4, Math.max(1, Math.ceil(o.internetdbRate))), batchSize: 1, dailyQuota: null,
    retries: 3, throttleRetries: 8, backoffMs: 1000, maxRetryAfterMs: 60_000, timeoutMs: 10_000, maxFailuresInRow: 10,
  }),
  open: (o): HttpHandle<InternetDbValue> => {
    const base = o.internetdbUrl.replace(/\/+$/, '');
    const headers = { Accept: 'application/json', 'User-Agent': 'cowrie-enrich/0.1.0' };
    return {
      kind: 'http',
      secrets: [],
      version: VERSION,
      request: ([ip]) => ({ url: `${base}/${encodeURIComponent(ip)}`, headers }),
      judge: (a) => {
        if (a.status === 401 || a.status === 403) return { kind: 'auth' };
        if (a.status === 429) return throttleVerdict(a);
        if (a.status >= 500) return { kind: 'transient', reason: `HTTP ${a.status}` };
        return { kind: 'done' };
      },
      credential: 'our requests',
      read: ([ip], a) => [read(ip, a)],
      close: () => {},
    };
  },
});
