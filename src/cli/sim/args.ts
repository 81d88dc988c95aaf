/** Argument parsers and the serve-until-signal loop shared by the `cowrie-sim` subcommands. */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { IpLookupStats, SimFaults } from '../../sim/http-util.js';

export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `expected a whole number ≥ ${min}` : `expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** A TCP port to listen on; 0 lets the system pick a free one. */
export const portArg = intArg(0, 65535);

export function probabilityArg(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a probability from 0 to 1');
  return n;
}

/** The key from a file (first line, trimmed), so it never shows in `ps`. */
export function readKeyFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the API key file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const key = text.split(/\r?\n/)[0].trim();
  if (!key) throw new UsageError(`the API key file ${path} is empty`);
  return key;
}

export function waitForStopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Options every HTTP API simulator takes. */
export interface HttpSimCliOptions {
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
  /** Only with `moreFaults`. */
  stallBodyRate?: number;
  malformedRate?: number;
  throttleRate?: number;
}

/** The injected faults the flags ask for. */
export function cliFaults(o: HttpSimCliOptions): SimFaults {
  return {
    error500Rate: o.errorRate, timeoutRate: o.timeoutRate, dropRate: o.dropRate,
    stallBodyRate: o.stallBodyRate, malformedRate: o.malformedRate, throttleRate: o.throttleRate,
  };
}

export interface HttpSimSpec<S> {
  name: string;
  description: string;
  defaultPort: number;
  rateHelp: string;
  defaultRate: number;
  quotaHelp: string;
  defaultQuota: number;
  /** False for services that take no key (no --api-key-file). Default true. */
  takesApiKey?: boolean;
  /** Also offer --stall-body-rate, --malformed-rate and --throttle-rate. */
  moreFaults?: boolean;
  start(o: HttpSimCliOptions & { apiKey?: string }): Promise<S & { url: string; close(): Promise<void> }>;
  summary(sim: S): string;
}

/** `cowrie-sim <name>` for an HTTP API simulator: same flags, serve until SIGINT/SIGTERM, print a summary. */
export function registerHttpSimCommand<S>(program: Command, spec: HttpSimSpec<S>): void {
  const command = program
    .command(spec.name)
    .description(spec.description)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0 = any free port)', portArg, spec.defaultPort)
    .option('--seed <n>', 'world seed (same seed, same answers)', intArg(0), 1)
    .option('--rate <n>', spec.rateHelp, intArg(0), spec.defaultRate)
    .option('--daily-quota <n>', spec.quotaHelp, intArg(0), spec.defaultQuota);
  if (spec.takesApiKey ?? true) command.option('--api-key-file <file>', 'accept only the key in this file (otherwise any key)');
  command
    .option('--latency-ms <ms>', 'delay before each answer', intArg(0), 0)
    .option('--error-rate <p>', 'probability of answering HTTP 500', probabilityArg, 0)
    .option('--timeout-rate <p>', 'probability of never answering', probabilityArg, 0)
    .option('--drop-rate <p>', 'probability of closing the connection without an answer', probabilityArg, 0);
  if (spec.moreFaults) {
    command
      .option('--stall-body-rate <p>', 'probability of sending the headers and a first chunk, then nothing', probabilityArg, 0)
      .option('--malformed-rate <p>', 'probability of answering 200 with a body that is not valid JSON', probabilityArg, 0)
      .option('--throttle-rate <p>', 'probability of answering 429 with Retry-After whatever the rate', probabilityArg, 0);
  }
  command
    .action(async (opts: HttpSimCliOptions) => {
      const sim = await spec.start({ ...opts, apiKey: opts.apiKeyFile ? readKeyFile(opts.apiKeyFile) : undefined });
      console.log(`${spec.name} simulator listening on ${sim.url}`);
      await waitForStopSignal();
      await sim.close();
      console.log(`${spec.name} simulator stopped: ${spec.summary(sim)}`);
    });
}

export function statusSummary(byStatus: Record<string | number, number>): string {
  return Object.entries(byStatus).map(([k, v]) => `${v}×${k}`).join(', ') || 'none';
}

/** The stop line of an IP-lookup simulator. */
export function ipSimSummary(stats: IpLookupStats): string {
  return `${stats.requests} requests, ${stats.byIp.size} distinct IPs, at most ${stats.maxPerSecond} in a second; answers: ${statusSummary(stats.byStatus)}`;
}
