/**
 * `cowrie-sim greynoise`: run the GreyNoise API simulator until SIGINT/SIGTERM, so the
 * GreyNoise pass can be tried offline (`--greynoise-url http://127.0.0.1:8081`).
 */
import type { Command } from 'commander';
import { startGreyNoiseSim } from '../../sim/greynoise-sim.js';
import { registerHttpSimCommand, statusSummary } from './args.js';

export function registerGreyNoiseCommand(program: Command): void {
  registerHttpSimCommand(program, {
    name: 'greynoise',
    description: 'GreyNoise API simulator (HTTP): Community v3 and Enterprise multi quick check, seeded answers',
    defaultPort: 8081,
    rateHelp: 'requests per second served; past it 429 with Retry-After: 1 (0 = off)',
    defaultRate: 10,
    quotaHelp: 'lookups per UTC day; past it 429 with the daily-limit message (0 = off)',
    defaultQuota: 0,
    start: (o) => startGreyNoiseSim({
      host: o.host, port: o.port, seed: o.seed, apiKey: o.apiKey, latencyMs: o.latencyMs,
      ratePerSecond: o.rate > 0 ? o.rate : undefined,
      dailyQuota: o.dailyQuota > 0 ? o.dailyQuota : undefined,
      faults: { error500Rate: o.errorRate, timeoutRate: o.timeoutRate, dropRate: o.dropRate },
    }),
    summary: (sim) => `${sim.stats.requests} requests, ${sim.stats.ipsRequested.length} IPs asked; answers: ${statusSummary(sim.stats.byStatus)}`,
  });
}
