/**
 * `cowrie-sim virustotal`: run the VirusTotal v3 simulator until SIGINT/SIGTERM, so the
 * file pass can be tried offline (`--virustotal-url http://127.0.0.1:8082`).
 */
import type { Command } from 'commander';
import { startVirusTotalSim } from '../../sim/virustotal-sim.js';
import { intArg, probabilityArg, readKeyFile, waitForStopSignal } from './args.js';

interface VirusTotalSimCliOptions {
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

export function registerVirusTotalCommand(program: Command): void {
  program
    .command('virustotal')
    .description('VirusTotal v3 file-report simulator (HTTP): seeded reports for ~70% of SHA-256s, 404 for the rest')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port', intArg(0), 8082)
    .option('--seed <n>', 'world seed (same seed, same answers)', intArg(0), 1)
    .option('--rate <n>', 'requests per minute served; past it 429 TooManyRequestsError (0 = off)', intArg(0), 4)
    .option('--daily-quota <n>', 'lookups per UTC day; past it 429 QuotaExceededError (0 = off)', intArg(0), 500)
    .option('--api-key-file <file>', 'accept only the key in this file (otherwise any key)')
    .option('--latency-ms <ms>', 'delay before each answer', intArg(0), 0)
    .option('--error-rate <p>', 'probability of answering HTTP 500', probabilityArg, 0)
    .option('--timeout-rate <p>', 'probability of never answering', probabilityArg, 0)
    .option('--drop-rate <p>', 'probability of closing the connection without an answer', probabilityArg, 0)
    .action(async (opts: VirusTotalSimCliOptions) => {
      const sim = await startVirusTotalSim({
        port: opts.port,
        seed: opts.seed,
        apiKey: opts.apiKeyFile ? readKeyFile(opts.apiKeyFile) : undefined,
        ratePerMinute: opts.rate > 0 ? opts.rate : undefined,
        dailyQuota: opts.dailyQuota > 0 ? opts.dailyQuota : undefined,
        latencyMs: opts.latencyMs,
        faults: { error500Rate: opts.errorRate, timeoutRate: opts.timeoutRate, dropRate: opts.dropRate },
        host: opts.host,
      });
      console.log(`virustotal simulator listening on ${sim.url}`);
      await waitForStopSignal();
      await sim.close();
      const s = sim.stats;
      const statuses = Object.entries(s.byStatus).map(([k, v]) => `${v}×${k}`).join(', ') || 'none';
      console.log(`virustotal simulator stopped: ${s.requests} requests; answers: ${statuses}`);
    });
}
