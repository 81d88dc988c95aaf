import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../../src/log.js';
import {
  createVirusTotalClient,
  trimAttributes,
  VIRUSTOTAL_MISS_TTL_SECONDS,
  VIRUSTOTAL_TTL_SECONDS,
} from '../../src/enrich/sources/virustotal.js';
import type { VirusTotalClientOptions, VirusTotalValue } from '../../src/enrich/sources/virustotal.js';
import type { SourceResult } from '../../src/enrich/sources/types.js';
import { startVirusTotalSim, virusTotalKnows, virusTotalReport } from '../../src/sim/virustotal-sim.js';
import type { VirusTotalSim, VirusTotalSimOptions } from '../../src/sim/virustotal-sim.js';
import { MemoryQuota } from '../helpers/memory-quota.js';

const KEY = 'vt_TEST_KEY_0123456789abcdef';
/** Tests shrink VirusTotal's minute to this, on both sides. */
const WINDOW = 300;


const sims: VirusTotalSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

async function sim(options: VirusTotalSimOptions = {}): Promise<VirusTotalSim> {
  const s = await startVirusTotalSim({ apiKey: KEY, rateWindowMs: WINDOW, ...options });
  sims.push(s);
  return s;
}

function client(url: string, extra: Partial<VirusTotalClientOptions> = {}) {
  const logger = new MemoryLogger();
  const quota = new MemoryQuota();
  const c = createVirusTotalClient({ url, apiKey: KEY, quota, logger, windowMs: WINDOW, backoffMs: 10, ratePerMinute: 20, ...extra });
  return { c, logger, quota };
}

async function collect(c: ReturnType<typeof createVirusTotalClient>, hashes: string[]) {
  const results = new Map<string, SourceResult<VirusTotalValue>>();
  const summary = await c.lookup(hashes, (r) => void results.set(r.key, r));
  return { results, summary };
}

function hashes(known: boolean, count: number, seed = 1): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const h = createHash('sha256').update(`file ${i}`).digest('hex');
    if (virusTotalKnows(h, seed) === known) out.push(h);
  }
  return out;
}

describe('VirusTotal client', () => {
  it('stores the stats, label, date and a trimmed report for a known file; 404 is a one-day miss; bad hashes are never sent', async () => {
    const s = await sim();
    const { c, logger } = client(s.url);
    const known = hashes(true, 6);
    const [unknown] = hashes(false, 1);
    const { results, summary } = await collect(c, [...known, unknown, 'abc123', 'g'.repeat(64)]);
    for (const h of known) {
      const attrs = (virusTotalReport(h, 1) as { attributes: Record<string, any> }).attributes;
      const r = results.get(h)!;
      expect(r).toMatchObject({ status: 'hit', ttlSeconds: VIRUSTOTAL_TTL_SECONDS });
      expect(r.value).toMatchObject({
        malicious: attrs.last_analysis_stats.malicious,
        suspicious: attrs.last_analysis_stats.suspicious,
        harmless: attrs.last_analysis_stats.harmless,
        undetected: attrs.last_analysis_stats.undetected,
        label: attrs.popular_threat_classification?.suggested_threat_label ?? null,
        meaningful_name: attrs.meaningful_name,
        type_description: attrs.type_description,
        size: attrs.size,
        sha256: h,
      });
      expect(r.value!.last_analysis_date).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(r.value!.trimmed.last_analysis_results).toBeUndefined();
      expect(r.value!.trimmed.last_analysis_stats).toEqual(attrs.last_analysis_stats);
    }
    // The seeded world has both labelled and clean files among these.
    expect(known.some((h) => results.get(h)!.value!.label !== null)).toBe(true);
    expect(results.get(unknown)).toMatchObject({ status: 'miss', value: null, ttlSeconds: VIRUSTOTAL_MISS_TTL_SECONDS });
    expect(results.get('abc123')).toMatchObject({ status: 'error', reason: 'not a SHA-256' });
    expect(results.get('g'.repeat(64))).toMatchObject({ status: 'error', reason: 'not a SHA-256' });
    expect(s.stats.hashesRequested.sort()).toEqual([...known, unknown].sort());
    expect(summary).toMatchObject({ sent: 7, quotaExhausted: false, pending: 0 });
    expect(JSON.stringify([...results.values(), logger.lines])).not.toContain(KEY);
  });

  it('never exceeds the per-window rate at the server', async () => {
    const s = await sim({ ratePerMinute: 4 });
    const { c } = client(s.url, { ratePerMinute: 4 });
    const { results } = await collect(c, [...hashes(true, 6), ...hashes(false, 6)]);
    expect(results.size).toBe(12);
    expect([...results.values()].every((r) => r.status === 'hit' || r.status === 'miss')).toBe(true);
    expect(s.stats.byStatus[429]).toBeUndefined();
    const t = [...s.stats.requestTimes].sort((a, b) => a - b);
    expect(t).toHaveLength(12);
    for (let i = 0; i + 4 < t.length; i++) expect(t[i + 4] - t[i]).toBeGreaterThanOrEqual(WINDOW);
  });

  it('waits and retries after 429 TooManyRequestsError', async () => {
    const s = await sim({ ratePerMinute: 2 });
    const { c } = client(s.url, { ratePerMinute: 6, concurrency: 1 });
    const list = hashes(true, 5);
    const { results, summary } = await collect(c, list);
    expect(s.stats.byStatus[429]).toBeGreaterThan(0);
    expect([...results.values()].every((r) => r.status === 'hit')).toBe(true);
    expect(summary.pending).toBe(0);
  });

  it('stops for the day on 429 QuotaExceededError and leaves the rest pending', async () => {
    const s = await sim({ dailyQuota: 2 });
    const { c, logger } = client(s.url, { concurrency: 1 });
    const list = hashes(true, 6);
    const { results, summary } = await collect(c, list);
    expect(s.stats.requests).toBe(3);
    expect(summary).toMatchObject({ sent: 3, quotaExhausted: true, pending: 4 });
    expect(list.slice(2).every((h) => results.get(h)!.status === 'pending')).toBe(true);
    expect(logger.lines.filter((l) => l.includes('quota'))).toHaveLength(1);
  });

  it('stops before sending when the shared quota gate is spent', async () => {
    const s = await sim();
    const { c, quota } = client(s.url);
    quota.left = 2;
    const { summary } = await collect(c, hashes(false, 5));
    expect(s.stats.requests).toBe(2);
    expect(summary).toMatchObject({ quotaExhausted: true, pending: 3 });
  });

  it('retries 500s: passing ones succeed, lasting ones become errors for the next run', async () => {
    const [bad] = hashes(true, 1);
    const s = await sim({ faults: { failKeys: [bad], failTimesPerKey: 1 } });
    const { c } = client(s.url, { retries: 2 });
    const good = hashes(false, 3);
    const { results, summary } = await collect(c, [bad, ...good]);
    expect(results.get(bad)).toMatchObject({ status: 'error', ttlSeconds: 0 });
    expect(results.get(bad)!.reason).toContain('HTTP 500 TransientError');
    expect(s.stats.hashesRequested.filter((h) => h === bad)).toHaveLength(3);
    for (const h of good) expect(results.get(h)!.status).toBe('miss');
    expect(s.stats.hashesRequested.filter((h) => h === good[0])).toHaveLength(2);
    expect(summary.pending).toBe(0);
  });

  it('a failing hash is retried only while a rate slot is free, never holding up the run for a window', async () => {
    const [bad] = hashes(true, 1);
    const good = hashes(false, 2);
    // The public API's 4 requests a minute, with a real minute: a retry that queued for a slot would wait ~60 s.
    const s = await sim({ faults: { failKeys: [bad] }, rateWindowMs: 60_000 });
    const { c } = client(s.url, { ratePerMinute: 4, windowMs: 60_000, retries: 2 });
    const { results, summary } = await collect(c, [bad, ...good]);
    for (const h of good) expect(results.get(h)!.status).toBe('miss');
    // Three first tries and one retry fill the window; the second retry is not queued for the next one.
    expect(s.stats.hashesRequested.filter((h) => h === bad)).toHaveLength(2);
    expect(results.get(bad)).toMatchObject({ status: 'error', ttlSeconds: 0 });
    expect(results.get(bad)!.reason).toBe('VirusTotal: HTTP 500 TransientError (not retried now: no rate slot free; left for the next run)');
    expect(summary.sent).toBe(4);
  });

  it('turns VirusTotal off for the run on 401, with one error line and the key hidden', async () => {
    const s = await sim({ apiKey: 'another-key' });
    const { c, logger } = client(s.url, { concurrency: 1 });
    const { results, summary } = await collect(c, hashes(true, 4));
    expect(summary.authError).toBe('VirusTotal rejected the API key (HTTP 401 WrongCredentialsError)');
    expect(summary.pending).toBe(4);
    expect(s.stats.requests).toBe(1);
    expect([...results.values()].every((r) => r.status === 'pending')).toBe(true);
    expect(logger.lines.filter((l) => l.startsWith('[ERROR]'))).toHaveLength(1);
    expect(JSON.stringify([...results.values(), logger.lines, summary])).not.toContain(KEY);
  });

  it('trims oversized fields and long lists from the stored report', () => {
    const t = trimAttributes({ a: 1, last_analysis_results: { x: 1 }, big: 'x'.repeat(5000), list: Array.from({ length: 50 }, (_, i) => i) });
    expect(t).toEqual({ a: 1, list: Array.from({ length: 20 }, (_, i) => i) });
  });
});
