import fs from 'node:fs';
import path from 'node:path';
import { Option } from 'commander';
import { loadConfigFile, resolveConfig } from '../config/config.js';
import { UserError, UsageError, errorMessage } from '../errors.js';
import { checkSetName, DEFAULT_MAX_AGE } from '../report/blocklist.js';
import { checkViewFormat, runReport } from '../report/report.js';
import { VIEWS } from '../report/views.js';
import { parseDuration } from '../report/window.js';
import { openStore } from '../store/store.js';
import { addDbOptions, dbFlag, newProgram, runProgram } from './main.js';

interface ReportOpts {
  db?: string; database?: string; config?: string; since?: string; until?: string; sensor?: string[]; limit?: string; format?: string; out?: string;
  classification?: string; new?: boolean; minSessions?: string; minSensors?: string; includeScanners?: boolean; excludeScanners?: boolean;
  maxAge?: string; setName?: string;
}

function count(flag: string, v: string | undefined, fallback: number, max = 1_000_000): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n > max) throw new UsageError(`${flag} must be a whole number from 0 to ${max}, got ${JSON.stringify(v.slice(0, 20))}`);
  return n;
}

/** Write next to the target, then rename: a reader never sees half a report. */
function writeOut(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new UserError(`cannot write ${file}: ${errorMessage(err).replace(/^[A-Z]+: /, '')}`, 1);
  }
}

const program = newProgram('cowrie-report', 'Reports on the attacks your sensors saw: terminal tables, JSON, CSV, a self-contained HTML report, blocklists and threat-intel feeds.')
  .argument('<view>', `one of: ${VIEWS.join(', ')}`)
  .option('--since <when>', 'window start: a duration before --until (7d, 24h, 90m) or a date/time (default 7d)')
  .option('--until <when>', 'window end, inclusive: a date (its whole day) or date/time (default: the newest event)')
  .option('--sensor <name...>', 'only these sensors')
  .option('--limit <n>', 'rows per view (default 10)')
  .option('--format <format>', 'table, json, csv, html; blocklist: plain, csv, json, nft, ipset, stix, misp; files also stix, misp')
  .option('--out <file>', 'write to this file instead of standard output')
  .option('--classification <name>', 'ips: only this GreyNoise classification (malicious, benign, unknown, not_observed, unenriched…)')
  .option('--new', 'ips: only IPs never seen before the window')
  .option('--min-sessions <n>', 'ips, blocklist: at least this many sessions in the window')
  .option('--min-sensors <n>', 'blocklist: seen on at least this many sensors')
  .addOption(new Option('--include-scanners', 'blocklist: keep IPs GreyNoise sees scanning the whole internet (default)').conflicts('excludeScanners'))
  .option('--exclude-scanners', 'blocklist: drop IPs GreyNoise sees scanning the whole internet')
  .option('--max-age <duration>', `blocklist, feeds: only IPs active this long before the window's end; feed validity (default ${DEFAULT_MAX_AGE})`)
  .option('--set-name <name>', 'blocklist nft/ipset: set name prefix (default cowrie_blocklist)');
addDbOptions(program);

program.action(async (viewArg: string, opts: ReportOpts) => {
  const { view, format } = checkViewFormat(viewArg, opts.format);
  const maxAgeText = opts.maxAge ?? DEFAULT_MAX_AGE;
  const maxAgeMs = parseDuration(maxAgeText);
  if (maxAgeMs === null) throw new UsageError(`--max-age ${JSON.stringify(maxAgeText.slice(0, 20))}: expected a duration like 30d, 24h or 90m`);
  const limit = count('--limit', opts.limit, 10);
  if (limit < 1) throw new UsageError('--limit must be at least 1');
  const setName = checkSetName(opts.setName ?? 'cowrie_blocklist');
  if (opts.classification !== undefined && !/^[a-z_]{1,32}$/.test(opts.classification)) throw new UsageError('--classification: a GreyNoise classification such as malicious, benign, unknown, not_observed or unenriched');
  const cfg = resolveConfig({ db: dbFlag(opts) }, process.env, loadConfigFile(opts.config, process.env));
  const store = await openStore(cfg.db);
  let text: string;
  try {
    ({ text } = await runReport(store.db, {
      view, format, since: opts.since, until: opts.until, sensors: opts.sensor, limit,
      ips: { classification: opts.classification, newOnly: !!opts.new, minSessions: count('--min-sessions', opts.minSessions, 0) },
      blocklist: {
        minSessions: count('--min-sessions', opts.minSessions, 0), minSensors: count('--min-sensors', opts.minSensors, 0),
        scanners: opts.excludeScanners ? 'exclude' : 'include', maxAgeMs,
      },
      setName,
      color: !opts.out && format === 'table' && process.stdout.isTTY === true && !process.env.NO_COLOR,
    }));
  } finally {
    await store.close();
  }
  if (opts.out) writeOut(opts.out, text);
  else process.stdout.write(text);
});

await runProgram(program);
