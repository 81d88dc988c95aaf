/**
 * `cowrie-sim logs`: write synthetic Cowrie JSON logs (deterministic for a seed) for tests,
 * benchmarks and demos.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { GenerateLogsSummary } from '../../sim/log-generator.js';

export interface LogsCommandOptions {
  out: string;
  sessions: string;
  ips: string;
  sensors: string;
  days: string;
  seed: string;
  startDate?: string;
  gzip?: boolean;
  faults?: boolean;
}

function whole(flag: string, text: string, min: number, max: number): number {
  const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got '${text}'`);
  return n;
}

/** Runs the command; returns the summary it printed. */
export async function runLogsCommand(opts: LogsCommandOptions, print: (line: string) => void = console.log): Promise<GenerateLogsSummary> {
  const sessions = whole('--sessions', opts.sessions, 0, 100_000_000);
  const ips = whole('--ips', opts.ips, 1, 10_000_000);
  const sensors = whole('--sensors', opts.sensors, 1, 1000);
  const days = whole('--days', opts.days, 1, 3660);
  const seed = whole('--seed', opts.seed, 0, 0xffffffff);
  const day = opts.startDate === undefined ? null : Date.parse(`${opts.startDate}T00:00:00Z`);
  if (day !== null && !(/^\d{4}-\d{2}-\d{2}$/.test(opts.startDate ?? '') && Number.isFinite(day) && new Date(day).toISOString().startsWith(opts.startDate ?? ''))) {
    throw new UsageError(`--start-date must be a date like 2024-01-01, got '${opts.startDate}'`);
  }
  const { generateLogs } = await import('../../sim/log-generator.js');
  const summary = await generateLogs({
    outDir: opts.out, sessions, ips, sensors, days, seed, startDate: opts.startDate, gzip: opts.gzip === true, faults: opts.faults === true,
  });
  const { paths: _paths, ...figures } = summary;
  print(JSON.stringify({ out: opts.out, ...figures }));
  return summary;
}

export function registerLogsCommand(program: Command): void {
  program
    .command('logs')
    .description('write synthetic Cowrie JSON logs: <out>/<sensor>/cowrie.json.YYYY-MM-DD per day, the last day cowrie.json')
    .requiredOption('--out <dir>', 'folder to write into (created if missing)')
    .option('--sessions <n>', 'number of attacker sessions', '2000')
    .option('--ips <n>', 'size of the attacker IP pool (heavy-tailed: few IPs, many sessions)', '150')
    .option('--sensors <n>', 'number of honeypot sensors (with 2 or more, the last logs sensor "" like DShield)', '2')
    .option('--days <n>', 'number of days (one file per sensor per day)', '3')
    .option('--seed <n>', 'seed: the same seed writes the same bytes', '1')
    .option('--start-date <YYYY-MM-DD>', 'first day (UTC)', '2024-01-01')
    .option('--gzip', 'gzip the rotated (dated) files')
    .option('--faults', 'mix in faulty lines (bad JSON, missing fields, NUL bytes, invalid UTF-8, huge fields, ...)')
    .addHelpText('after', '\nExample:\n  cowrie-sim logs --out ./logs --sessions 20000 --ips 1500 --sensors 3 --days 7 --seed 7 --gzip --faults')
    .action(async (opts: LogsCommandOptions) => {
      await runLogsCommand(opts);
    });
}
