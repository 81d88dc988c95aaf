/**
 * `cowrie-sim dshield`: run the DShield/ISC `api/ip` simulator until SIGINT/SIGTERM, so the
 * DShield source can be tried offline (its URL set to http://127.0.0.1:8084).
 */
import type { Command } from 'commander';
import { startDShieldSim } from '../../sim/dshield-sim.js';
import { cliFaults, ipSimSummary, registerHttpSimCommand } from './args.js';

export function registerDShieldCommand(program: Command): void {
  registerHttpSimCommand(program, {
    name: 'dshield',
    description: 'DShield/ISC api/ip simulator (HTTP): seeded report counts, dates and threat feeds; 403 for generic User-Agents',
    defaultPort: 8084,
    rateHelp: 'requests per second served (ISC asks bots for at most 1); past it 429 with Retry-After: 1 (0 = off)',
    defaultRate: 2,
    quotaHelp: 'lookups per UTC day; past it 429 with Retry-After until midnight UTC (0 = off; ISC publishes none)',
    defaultQuota: 0,
    takesApiKey: false,
    moreFaults: true,
    start: (o) => startDShieldSim({
      host: o.host, port: o.port, seed: o.seed, latencyMs: o.latencyMs,
      ratePerSecond: o.rate > 0 ? o.rate : undefined,
      dailyQuota: o.dailyQuota > 0 ? o.dailyQuota : undefined,
      faults: cliFaults(o),
    }),
    summary: (sim) => ipSimSummary(sim.stats),
  });
}
