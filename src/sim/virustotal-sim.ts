/**
 * A VirusTotal v3 file-report simulator (docs/PROTOCOLS.md §5): `GET /api/v3/files/{id}` with
 * `x-apikey`, a per-minute rate limit (429 TooManyRequestsError), a daily quota
 * (429 QuotaExceededError), VT-shaped reports for ~70% of SHA-256s and NotFoundError for
 * the rest. Deterministic for a seed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hash32 } from './world.js';
import {
  AcceptWindow,
  applyFault,
  DailyCounter,
  FaultInjector,
  newStats,
  recordAnswer,
  sendJson,
  sleep,
  startHttpSim,
} from './http-util.js';
import type { SimFaults, SimStats } from './http-util.js';

export interface VirusTotalSimOptions {
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  seed?: number;
  /** When set, a missing key → 401 AuthenticationRequiredError, another key → 401 WrongCredentialsError. */
  apiKey?: string;
  /** Requests accepted per sliding window (default window one minute); beyond → 429 TooManyRequestsError. */
  ratePerMinute?: number;
  /** The window for ratePerMinute; shorter only in tests. */
  rateWindowMs?: number;
  /** File lookups answered per UTC day; beyond → 429 QuotaExceededError. */
  dailyQuota?: number;
  latencyMs?: number;
  faults?: SimFaults;
}

export interface VirusTotalSimStats extends SimStats {
  /** Every file id asked about, in arrival order. */
  hashesRequested: string[];
}

export interface VirusTotalSim {
  url: string;
  port: number;
  stats: VirusTotalSimStats;
  close(): Promise<void>;
  setOptions(partial: Partial<Omit<VirusTotalSimOptions, 'port' | 'host' | 'seed'>>): void;
}

const ENGINES = ['Avast', 'BitDefender', 'ClamAV', 'ESET-NOD32', 'Kaspersky', 'Microsoft', 'Sophos', 'Symantec'];
const FAMILIES: Array<[string, string, string, string]> = [
  // label, category, family, meaningful name
  ['trojan.mirai/gafgyt', 'trojan', 'mirai', 'x86_64'],
  ['trojan.gafgyt/mirai', 'trojan', 'gafgyt', 'bins.sh'],
  ['miner.xmrig/coinminer', 'miner', 'xmrig', 'xmrig'],
  ['trojan.xorddos/ddos', 'trojan', 'xorddos', 'sshd'],
  ['trojan.tsunami/kaiten', 'trojan', 'tsunami', 'ktn'],
];

function fakeHex(text: string, seed: number, length: number): string {
  let out = '';
  for (let i = 0; out.length < length; i++) out += hash32(`${text}:${i}`, seed).toString(16).padStart(8, '0');
  return out.slice(0, length);
}

/** Whether VirusTotal (in the world of `seed`) knows this SHA-256: ~70% of hashes. */
export function virusTotalKnows(sha256: string, seed: number): boolean {
  return hash32(`vt:${sha256.toLowerCase()}`, seed) % 100 < 70;
}

/** The `data` object of the report for a known SHA-256. */
export function virusTotalReport(sha256: string, seed: number, now = Date.now()): Record<string, unknown> {
  const id = sha256.toLowerCase();
  const h = hash32(`vt:${id}`, seed);
  const g = hash32(`vt2:${id}`, seed);
  const shell = (g & 3) === 0;
  const malicious = (g >>> 2) % 4 === 0 ? 0 : 20 + ((g >>> 4) % 40);
  const [label, category, family, meaningful] = FAMILIES[(g >>> 10) % FAMILIES.length];
  const stats = {
    harmless: 0,
    'type-unsupported': shell ? 4 : 2,
    suspicious: (g >>> 12) % 3,
    'confirmed-timeout': 0,
    timeout: (g >>> 14) % 2,
    failure: 0,
    malicious,
    undetected: 70 - malicious,
  };
  const analysed = Math.floor(now / 1000) - ((h >>> 8) % (90 * 86_400));
  const results: Record<string, unknown> = {};
  ENGINES.forEach((engine, i) => {
    const hit = malicious > 0 && (g >>> i) % 3 !== 0;
    results[engine] = {
      category: hit ? 'malicious' : 'undetected',
      engine_name: engine,
      engine_version: `${1 + (i % 5)}.${(g >>> i) % 10}.0`,
      engine_update: new Date(analysed * 1000).toISOString().slice(0, 10).replace(/-/g, ''),
      method: 'blacklist',
      result: hit ? `Linux.${family[0].toUpperCase()}${family.slice(1)}.${(g >>> i) % 9}` : null,
    };
  });
  const attributes: Record<string, unknown> = {
    sha256: id,
    sha1: fakeHex(`sha1:${id}`, seed, 40),
    md5: fakeHex(`md5:${id}`, seed, 32),
    meaningful_name: shell ? 'bins.sh' : meaningful,
    names: shell ? ['bins.sh', 'x.sh'] : [meaningful],
    type_description: shell ? 'Shell script' : 'ELF',
    type_tag: shell ? 'shell' : 'elf',
    size: shell ? 200 + ((h >>> 4) % 4000) : 20_000 + ((h >>> 4) % 2_000_000),
    reputation: malicious > 0 ? -((g >>> 6) % 50) : 0,
    times_submitted: 1 + ((h >>> 3) % 200),
    first_submission_date: analysed - ((h >>> 5) % (400 * 86_400)),
    last_submission_date: analysed,
    last_analysis_date: analysed,
    last_analysis_stats: stats,
    last_analysis_results: results,
    total_votes: { harmless: 0, malicious: (h >>> 7) % 5 },
    tags: shell ? ['shell'] : ['elf', '64bits'],
  };
  if (malicious > 0) {
    attributes.popular_threat_classification = {
      suggested_threat_label: label,
      popular_threat_category: [{ count: malicious, value: category }],
      popular_threat_name: [{ count: Math.max(1, malicious - 5), value: family }],
    };
  }
  return { id, type: 'file', links: { self: `https://www.virustotal.com/api/v3/files/${id}` }, attributes };
}

const vtError = (code: string, message: string): { error: { code: string; message: string } } => ({ error: { code, message } });

export async function startVirusTotalSim(options: VirusTotalSimOptions = {}): Promise<VirusTotalSim> {
  const seed = options.seed ?? 1;
  let opts: VirusTotalSimOptions = { ...options };
  const stats: VirusTotalSimStats = { ...newStats(), hashesRequested: [] };
  const window = new AcceptWindow();
  const daily = new DailyCounter();
  const faults = new FaultInjector(seed);
  const prefix = '/api/v3/files/';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = Date.now();
    stats.requests++;
    stats.requestTimes.push(arrived);
    const path = (req.url ?? '/').split('?')[0];
    const id = req.method === 'GET' && path.startsWith(prefix) ? decodeURIComponent(path.slice(prefix.length)) : null;
    if (id !== null) stats.hashesRequested.push(id);
    const answer = async (status: number, body: unknown, headers?: Record<string, string>): Promise<void> => {
      await sleep(opts.latencyMs ?? 0);
      recordAnswer(stats, arrived, status, id ?? undefined);
      sendJson(res, status, body, headers);
    };

    if (id === null) return answer(404, vtError('NotFoundError', `Resource "${path}" not found`));
    const key = req.headers['x-apikey'];
    if (opts.apiKey !== undefined && key === undefined) {
      return answer(401, vtError('AuthenticationRequiredError', 'X-Apikey header is missing'));
    }
    if (opts.apiKey !== undefined && key !== opts.apiKey) return answer(401, vtError('WrongCredentialsError', 'Wrong API key.'));
    if (!window.tryAccept(opts.ratePerMinute, opts.rateWindowMs ?? 60_000, arrived)) {
      return answer(429, vtError('TooManyRequestsError', 'Request rate limit exceeded. You are making more requests than allowed.'));
    }
    const fault = faults.decide(opts.faults, [id]);
    if (fault !== 'none') {
      if (fault === 'error500') {
        await sleep(opts.latencyMs ?? 0);
        recordAnswer(stats, arrived, 500, id);
      }
      applyFault(fault, res, vtError('TransientError', 'A transient error occurred, please retry.'));
      return;
    }
    if (!daily.tryTake(opts.dailyQuota, 1, arrived)) {
      return answer(429, vtError('QuotaExceededError', 'Quota exceeded. The daily quota resets at 00:00 UTC.'));
    }
    if (!/^([0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64})$/i.test(id)) {
      return answer(400, vtError('InvalidArgumentError', `"${id}" is not a valid file hash`));
    }
    if (id.length !== 64 || !virusTotalKnows(id, seed)) {
      return answer(404, vtError('NotFoundError', `File "${id}" not found`));
    }
    return answer(200, { data: virusTotalReport(id, seed, arrived) });
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
