/**
 * `cowrie-sim abuseipdb`: run the AbuseIPDB v2 `check` simulator until SIGINT/SIGTERM, so the
 * AbuseIPDB source can be tried offline (its URL set to http://127.0.0.1:8085).
 */
import type { Command } from 'commander';
import { startAbuseIpdbSim } from '../../sim/abuseipdb-sim.js';
import { cliFaults, ipSimSummary, registerHttpSimCommand } from './args.js';

export function registerAbuseIpdbCommand(program: Command): void {
  registerHttpSimCommand(program, {
    name: 'abuseipdb',
    description: 'AbuseIPDB API v2 check simulator (HTTP): seeded scores and reports, X-RateLimit headers, the daily quota',
    defaultPort: 8085,
    rateHelp: 'requests per second served; past it 429 with Retry-After: 1 (0 = off)',
    defaultRate: 5,
    quotaHelp: 'check lookups per UTC day (X-RateLimit-Limit; free plan 1000); past it 429 with the daily-limit detail (0 = unlimited)',
    defaultQuota: 1000,
    moreFaults: true,
    start: (o) => startAbuseIpdbSim({
      host: o.host, port: o.port, seed: o.seed, apiKey: o.apiKey, latencyMs: o.latencyMs,
      ratePerSecond: o.rate > 0 ? o.rate : undefined,
      dailyQuota: o.dailyQuota > 0 ? o.dailyQuota : Number.MAX_SAFE_INTEGER,
      faults: cliFaults(o),
    }),
    summary: (sim) => ipSimSummary(sim.stats),
  });
}
