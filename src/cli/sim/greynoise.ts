/**
 * `cowrie-sim greynoise`: run the GreyNoise API simulator until SIGINT/SIGTERM, so the
 * GreyNoise pass can be tried offline (`--greynoise-url http://127.0.0.1:8081`).
 */
import type { Command } from 'commander';
import { intArg, probabilityArg, readKeyFile, waitForStopSignal } from './args.js';
import { startGreyNoiseSim } from '../../sim/greynoise-sim.js';

interface GreyNoiseSimCliOptions {
  host: string;
  port: number;
  seed: number;
  rate: number;
  dailyQuota: number;
  apiKeyFile?: string;
  latencyMs: number;
  errorRate: number;
  timeoutRate: number;
  dropRate: number;
}

export function registerGreyNoiseCommand(program: Command): void {
  program
    .command('greynoise')
    .description('GreyNoise API simulator (HTTP): Community v3 and Enterprise multi quick check, seeded answers')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port', intArg(0), 8081)
    .option('--seed <n>', 'world seed (same seed, same answers)', intArg(0), 1)
    .option('--rate <n>', 'requests per second served; past it 429 with Retry-After: 1 (0 = off)', intArg(0), 10)
    .option('--daily-quota <n>', 'lookups per UTC day; past it 429 with the daily-limit message (0 = off)', intArg(0), 0)
    .option('--api-key-file <file>', 'accept only the key in this file (otherwise any key)')
    .option('--latency-ms <ms>', 'delay before each answer', intArg(0), 0)
    .option('--error-rate <p>', 'probability of answering HTTP 500', probabilityArg, 0)
    .option('--timeout-rate <p>', 'probability of never answering', probabilityArg, 0)
    .option('--drop-rate <p>', 'probability of closing the connection without an answer', probabilityArg, 0)
    .action(async (opts: GreyNoiseSimCliOptions) => {
      const sim = await startGreyNoiseSim({
        port: opts.port,
        seed: opts.seed,
        apiKey: opts.apiKeyFile ? readKeyFile(opts.apiKeyFile) : undefined,
        ratePerSecond: opts.rate > 0 ? opts.rate : undefined,
        dailyQuota: opts.dailyQuota > 0 ? opts.dailyQuota : undefined,
        latencyMs: opts.latencyMs,
        faults: { error500Rate: opts.errorRate, timeoutRate: opts.timeoutRate, dropRate: opts.dropRate },
        host: opts.host,
      });
      console.log(`greynoise simulator listening on ${sim.url}`);
      await waitForStopSignal();
      await sim.close();
      const s = sim.stats;
      const statuses = Object.entries(s.byStatus).map(([k, v]) => `${v}×${k}`).join(', ') || 'none';
      console.log(`greynoise simulator stopped: ${s.requests} requests, ${s.ipsRequested.length} IPs asked; answers: ${statuses}`);
    });
}
