/**
 * AbuseIPDB against its simulator on both databases (the standard source cases): the key from
 * ABUSEIPDB_API_KEY, the daily quota counted in the database and read from X-RateLimit-Remaining.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { enabledSources } from '../../src/enrich/sources/index.js';
import { MemoryLogger } from '../../src/log.js';
import { abuseIpdbCheck, startAbuseIpdbSim } from '../../src/sim/abuseipdb-sim.js';
import { ipSourceSuite } from '../helpers/ip-source-suite.js';

const KEY = 'abuse-test-key-5d1c';

const data = (ip: string, seed: number) => (abuseIpdbCheck(ip, seed, { maxAgeInDays: 90 }).body as { data: Record<string, unknown> }).data;

ipSourceSuite({
  name: 'abuseipdb',
  title: 'AbuseIPDB',
  defaultOn: true,
  start: (o) => startAbuseIpdbSim({ apiKey: KEY, ...o }),
  settings: (url) => ({ abuseipdbUrl: url, abuseipdbRate: 20 }),
  env: { ABUSEIPDB_API_KEY: KEY },
  rejected: { env: { ABUSEIPDB_API_KEY: 'revoked-key' } },
  quota: [
    { how: 'our count in the database', settings: { abuseipdbDailyQuota: 4 } },
    { how: "AbuseIPDB's X-RateLimit-Remaining", sim: { dailyQuota: 4 } },
  ],
  knows: (ip, seed) => {
    const d = data(ip, seed);
    return (d.totalReports as number) > 0 || (d.abuseConfidenceScore as number) > 0;
  },
  expectStored: (ip, stored, seed) => {
    const d = data(ip, seed);
    expect(stored).toMatchObject({
      abuse_confidence_score: d.abuseConfidenceScore, total_reports: d.totalReports, distinct_reporters: d.numDistinctUsers,
      usage_type: d.usageType, isp: d.isp, domain: d.domain, is_tor: d.isTor, last_reported_at: d.lastReportedAt,
    });
  },
});

describe('AbuseIPDB settings', () => {
  it('is used once ABUSEIPDB_API_KEY is set; the key never shows in an error', () => {
    const logger = new MemoryLogger();
    expect(enabledSources(resolveConfig({}, {}, {}), logger).map((s) => s.name)).not.toContain('abuseipdb');
    expect(enabledSources(resolveConfig({}, { ABUSEIPDB_API_KEY: KEY }, {}), logger).map((s) => s.name)).toContain('abuseipdb');
    expect(resolveConfig({}, {}, {}).abuseipdbDailyQuota).toBe(1000);
    let message = '';
    try {
      resolveConfig({}, { ABUSEIPDB_API_KEY: 'bad key\u0007' }, {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/ABUSEIPDB_API_KEY must be an API key/);
    expect(message).not.toContain('bad key');
  });
});
