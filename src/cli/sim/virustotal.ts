/**
 * `cowrie-sim virustotal`: run the VirusTotal v3 simulator until SIGINT/SIGTERM, so the
 * file pass can be tried offline (`--virustotal-url http://127.0.0.1:8082`).
 */
import type { Command } from 'commander';
import { startVirusTotalSim } from '../../sim/virustotal-sim.js';
import { registerHttpSimCommand, statusSummary } from './args.js';

export function registerVirusTotalCommand(program: Command): void {
  registerHttpSimCommand(program, {
    name: 'virustotal',
    description: 'VirusTotal v3 file-report simulator (HTTP): seeded reports for ~70% of SHA-256s, 404 for the rest',
    defaultPort: 8082,
    rateHelp: 'requests per minute served; past it 429 TooManyRequestsError (0 = off)',
    defaultRate: 4,
    quotaHelp: 'lookups per UTC day; past it 429 QuotaExceededError (0 = off)',
    defaultQuota: 500,
    start: (o) => startVirusTotalSim({
      host: o.host, port: o.port, seed: o.seed, apiKey: o.apiKey, latencyMs: o.latencyMs,
      ratePerMinute: o.rate > 0 ? o.rate : undefined,
      dailyQuota: o.dailyQuota > 0 ? o.dailyQuota : undefined,
      faults: { error500Rate: o.errorRate, timeoutRate: o.timeoutRate, dropRate: o.dropRate },
    }),
    summary: (sim) => `${sim.stats.requests} requests; answers: ${statusSummary(sim.stats.byStatus)}`,
  });
}
