/**
 * `cowrie-sim mmdb`: write simulated GeoLite2-City.mmdb and GeoLite2-ASN.mmdb for the world of a seed.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { fmt } from '../../log.js';

export interface MmdbCommandOptions {
  out: string;
  seed: string;
  buildDate?: string;
}

/** '2026-01-31' → that day at 00:00 UTC; anything else is a usage error. */
export function parseBuildDate(text: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  const date = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
  if (!date || date.toISOString().slice(0, 10) !== text) throw new UsageError(`--build-date must be a date like 2026-01-31, got '${text}'`);
  return date;
}

export function parseSeed(text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0xffffffff) throw new UsageError(`--seed must be a whole number from 0 to 4294967295, got '${text}'`);
  return Number(text);
}

/** Runs the command; returns the lines it printed (one per file written). */
export async function runMmdbCommand(opts: MmdbCommandOptions, print: (line: string) => void = console.log): Promise<string[]> {
  const seed = parseSeed(opts.seed);
  const buildEpoch = opts.buildDate !== undefined ? parseBuildDate(opts.buildDate) : undefined;
  const { writeWorldDatabases } = await import('../../sim/mmdb-world.js');
  const written = await writeWorldDatabases({ dir: opts.out, seed, buildEpoch });
  const lines = written.map(
    (w) => `wrote ${w.path} (${w.databaseType}, ${fmt(w.networks)} networks, ${fmt(w.bytes)} bytes, built ${w.buildEpoch.toISOString().slice(0, 10)})`,
  );
  for (const line of lines) print(line);
  return lines;
}

export function registerMmdbCommand(program: Command): void {
  program
    .command('mmdb')
    .description('write simulated GeoLite2-City.mmdb and GeoLite2-ASN.mmdb for the simulated world')
    .requiredOption('--out <dir>', 'folder to write the databases into (created if missing)')
    .option('--seed <n>', 'world seed (the log generator and Cymru simulator must use the same)', '1')
    .option('--build-date <YYYY-MM-DD>', 'build date stored in the databases (default: now); an old date makes them "stale"')
    .addHelpText('after', '\nExample:\n  cowrie-sim mmdb --out ./maxmind --seed 7 --build-date 2026-01-01')
    .action(async (opts: MmdbCommandOptions) => {
      await runMmdbCommand(opts);
    });
}
