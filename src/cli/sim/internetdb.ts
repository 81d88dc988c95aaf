/**
 * `cowrie-sim internetdb`: run the Shodan InternetDB simulator until SIGINT/SIGTERM, so the
 * InternetDB source can be tried offline (its URL set to http://127.0.0.1:8086).
 */
import type { Command } from 'commander';
import { startInternetDbSim } from '../../sim/internetdb-sim.js';
import { cliFaults, ipSimSummary, registerHttpSimCommand } from './args.js';

export function registerInternetDbCommand(program: Command): void {
  registerHttpSimCommand(program, {
    name: 'internetdb',
    description: 'Shodan InternetDB simulator (HTTP): seeded ports, CPEs, tags and CVEs; 404 "No information available" for the rest',
    defaultPort: 8086,
    rateHelp: 'requests per second served; past it 429 "Rate limit exceeded" with Retry-After: 1 (0 = off)',
    defaultRate: 1,
    quotaHelp: 'lookups per UTC day; past it 429 with Retry-After until midnight UTC (0 = off; Shodan publishes none)',
    defaultQuota: 0,
    takesApiKey: false,
    moreFaults: true,
    start: (o) => startInternetDbSim({
      host: o.host, port: o.port, seed: o.seed, latencyMs: o.latencyMs,
      ratePerSecond: o.rate > 0 ? o.rate : undefined,
      dailyQuota: o.dailyQuota > 0 ? o.dailyQuota : undefined,
      faults: cliFaults(o),
    }),
    summary: (sim) => ipSimSummary(sim.stats),
  });
}
