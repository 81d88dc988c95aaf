/**
 * `cowrie-sim cymru`: run the Team Cymru bulk whois simulator until SIGINT/SIGTERM,
 * so a setup can be tried offline (`--cymru-host 127.0.0.1 --cymru-port 4343`).
 */
import type { Command } from 'commander';
import { startCymruSim } from '../../sim/cymru-sim.js';
import type { CymruSimFaults } from '../../sim/cymru-sim.js';
import { intArg, portArg, probabilityArg as rateArg, waitForStopSignal } from './args.js';

/** Default rate limit: far above a bulk client (≈0.5 connections/s), far below a per-IP query loop. */
export const DEFAULT_SIM_CONNECTIONS_PER_SECOND = 5;

export interface CymruSimCliOptions {
  host: string;
  port: number;
  seed: number;
  latencyMs: number;
  latencyPerIpMs: number;
  rateLimit: number;
  header?: boolean;
  faultRate: number;
  dropRate: number;
  stallRate: number;
  refuseRate: number;
  failFirst: number;
}

export function registerCymruCommand(program: Command): void {
  program
    .command('cymru')
    .description('Team Cymru bulk whois simulator (TCP), answering from the seeded fake Internet')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0 = any free port)', portArg, 4343)
    .option('--seed <n>', 'world seed (same seed, same answers)', intArg(0), 1)
    .option('--latency-ms <ms>', 'delay before the first answer of each batch', intArg(0), 0)
    .option('--latency-per-ip-ms <ms>', 'delay before each answered line', intArg(0), 0)
    .option(
      '--rate-limit <n>',
      'connections per second served; past it a connection is closed without a word (0 = off)',
      intArg(0),
      DEFAULT_SIM_CONNECTIONS_PER_SECOND,
    )
    .option('--header', 'print column headings in bulk mode (the real server does not)')
    .option('--fault-rate <p>', 'per-line probability of each of: garbage line, duplicate row, multi-origin row, NA row, Error: line', rateArg, 0)
    .option('--drop-rate <p>', 'per-connection probability of closing part-way through the answer', rateArg, 0)
    .option('--stall-rate <p>', 'per-connection probability of never answering', rateArg, 0)
    .option('--refuse-rate <p>', 'per-connection probability of closing at once', rateArg, 0)
    .option('--fail-first <n>', 'close the first N connections at once', intArg(0), 0)
    .addHelpText('after', '\nExample:\n  cowrie-sim cymru --port 4343 --seed 7 --latency-ms 200 --fault-rate 0.01\n  printf "begin\\nverbose\\n8.8.8.8\\nend\\n" | nc 127.0.0.1 4343')
    .action(async (opts: CymruSimCliOptions) => {
      await runCymruSimCommand(opts, console.log, waitForStopSignal());
    });
}

/** Start the simulator, print where it listens, serve until `until` settles, print a summary. */
export async function runCymruSimCommand(opts: CymruSimCliOptions, print: (line: string) => void, until: Promise<void>): Promise<void> {
  const p = opts.faultRate;
  const faults: CymruSimFaults = {
    garbage: p, duplicate: p, multiOrigin: p, na: p, error: p,
    drop: opts.dropRate, stall: opts.stallRate, refuse: opts.refuseRate, failFirstN: opts.failFirst,
  };
  const sim = await startCymruSim({
    host: opts.host,
    port: opts.port,
    seed: opts.seed,
    latencyMsPerBatch: opts.latencyMs,
    latencyMsPerIp: opts.latencyPerIpMs,
    maxConnectionsPerSecond: opts.rateLimit > 0 ? opts.rateLimit : undefined,
    header: opts.header ?? false,
    faults,
  });
  print(`cymru simulator listening on ${sim.host}:${sim.port}`);
  await until;
  await sim.close();
  const s = sim.stats;
  print(
    `cymru simulator stopped: ${s.connections} connections, ${s.batches} batches, ${s.ipsAnswered} IPs and ${s.asnsAnswered} ASNs answered, ${s.rateLimited} rate-limited`,
  );
}
