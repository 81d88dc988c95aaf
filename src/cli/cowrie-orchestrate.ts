import { Option } from 'commander';
import { configFileOf, loadConfigFile, resolveConfig, sensorsOf, type Config } from '../config/config.js';
import { checkServerUrl, resolveCredentials, resolveTarget } from '../enrich/maxmind-update/settings.js';
import { UserError, UsageError, errorMessage } from '../errors.js';
import { DEFAULT_BATCH_SIZE } from '../ingest/ingest.js';
import { fmt } from '../log.js';
import { acquireRunLock } from '../orchestrate/lock.js';
import type { MaxmindUpdatePlan } from '../orchestrate/maxmind-step.js';
import { countFiles, planRun } from '../orchestrate/plan.js';
import { dryRunLines, dryRunPlan, reportLines } from '../orchestrate/report.js';
import { orchestrate, type OrchestrateReport, type ReportState } from '../orchestrate/run.js';
import { StatusEmitter, statusTimestamp, writeStatusFile } from '../status/emitter.js';
import { createProgress, progressIntervalMs, progressMode, refreshStatusToProgress, type Progress } from '../status/progress.js';
import { openStore } from '../store/store.js';
import { parseDbUrl } from '../store/url.js';
import { loadGeoipConf } from './enrich-geoip.js';
import { addDbOptions, consoleLogger, dbFlag, defaultStatusDir, interruptSignal, newProgram, runProgram, VERSION } from './main.js';

interface OrchestrateOpts {
  db?: string; database?: string; config?: string; enrichIps?: string; skipEnrich?: boolean; only?: string[];
  concurrency?: string; dryRun?: boolean; wait?: boolean; json?: boolean; statusDir?: string; batchSize?: string;
  verbose?: boolean; quiet?: boolean;
}

const MAX_CONCURRENCY = 16;

function wholeNumber(flag: string, raw: string | undefined, def: number, min: number, max: number): number {
  if (raw === undefined) return def;
  const n = /^\d{1,9}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

/** `[maxmind] auto_update`: folder, editions and credentials checked now, before anything runs (exit 2). */
async function maxmindPlan(cfg: Config): Promise<MaxmindUpdatePlan> {
  const input = { ...cfg, conf: await loadGeoipConf({}, process.env) };
  const target = resolveTarget(input);
  checkServerUrl(cfg.maxmindUrl);
  return { ...target, afterDays: cfg.maxmindUpdateAfterDays, baseUrl: cfg.maxmindUrl, credentials: resolveCredentials(input), userAgent: `cowrie-enrich/${VERSION}` };
}

/** Why the run exits non-zero, in one line (the table above says it all in detail). */
function exitError(r: OrchestrateReport): UserError {
  const failed = r.sensors.filter((s) => s.outcome === 'failed').map((s) => s.name);
  const parts: string[] = [];
  if (failed.length) parts.push(`${failed.length} sensor(s) failed: ${failed.join(', ')}`);
  if (r.maxmind_update?.outcome === 'failed') parts.push('the MaxMind update failed');
  if (r.refresh.outcome === 'failed') parts.push(`the refresh failed: ${r.refresh.error ?? ''}`.trimEnd());
  if (r.exit_code === 130) parts.unshift('interrupted: committed work is kept; run again to continue');
  return new UserError(parts.join('; ') || `exit ${r.exit_code}`, r.exit_code);
}

async function run(opts: OrchestrateOpts): Promise<void> {
  // Everything is validated before anything is opened: a mistake changes nothing (exit 2).
  const doc = loadConfigFile(opts.config, process.env);
  const configFile = configFileOf(doc);
  if (!configFile) throw new UsageError('no config file: give --config sensors.toml (or COWRIE_CONFIG)');
  const cfg = resolveConfig({ db: dbFlag(opts), statusDir: opts.statusDir, enrichIps: opts.enrichIps }, process.env, doc);
  const only = (opts.only ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  const plan = planRun(sensorsOf(doc), cfg, { only, skipEnrich: opts.skipEnrich });
  const concurrency = wholeNumber('--concurrency', opts.concurrency, 2, 1, MAX_CONCURRENCY);
  const batchSize = wholeNumber('--batch-size', opts.batchSize, DEFAULT_BATCH_SIZE, 1, 1_000_000);
  const maxmind = cfg.maxmindAutoUpdate && plan.refresh ? await maxmindPlan(cfg) : null;
  const database = parseDbUrl(cfg.db).display;

  if (opts.dryRun) {
    const counts = await Promise.all(plan.sensors.map((p) => countFiles(p.sensor)));
    const d = dryRunPlan({ config: configFile, database, concurrency, plan, counts, maxmind });
    process.stdout.write(opts.json ? `${JSON.stringify(d, null, 2)}\n` : `${dryRunLines(d).join('\n')}\n`);
    return;
  }

  let progress: Progress = createProgress({ label: 'load', mode: progressMode(opts), intervalMs: progressIntervalMs() });
  const logger = consoleLogger(opts, (line) => progress.writeLine(line));
  const statusDir = cfg.statusDir ?? defaultStatusDir();
  let report: OrchestrateReport;
  try {
    logger.info(`Using database ${database}`);
    const status = new StatusEmitter({ dir: statusDir, logger, minIntervalMs: 1000, onUpdate: (phase, fields) => refreshStatusToProgress(progress)(phase, fields) });
    status.prepare();
    let warned = false;
    const writeReport = (r: OrchestrateReport, state: ReportState) => {
      try {
        writeStatusFile(statusDir, 'orchestrate.json', { ...r, state, timestamp: statusTimestamp(Date.now()) });
      } catch (err) {
        if (!warned) logger.warn(`cannot write ${statusDir}/orchestrate.json (further errors are not reported): ${errorMessage(err)}`);
        warned = true;
      }
    };
    const signal = interruptSignal();
    // Loads run side by side: a connection each, one for the refresh's passes, one spare.
    const store = await openStore(cfg.db, { connections: concurrency + 2 });
    try {
      const lock = await acquireRunLock(store, { wait: opts.wait === true, logger, signal });
      try {
        report = await orchestrate(store, {
          plan, config: cfg, concurrency, batchSize, logger, signal, refreshStatus: status, maxmind, onReport: writeReport,
          onLoadProgress: (p) => progress.update('sensors', p.bytesRead, p.bytesTotal, 'bytes', `${fmt(p.sensorsDone)}/${fmt(p.sensorsTotal)} sensors done, ${fmt(p.eventsRead)} events`),
          onRefreshStart: () => {
            progress.stop();
            progress = createProgress({ label: 'refresh', mode: progressMode(opts), intervalMs: progressIntervalMs() });
          },
        });
      } finally {
        await lock.release();
      }
    } finally {
      await store.close();
    }
  } finally {
    progress.stop();
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else if (!opts.quiet) process.stdout.write(`${reportLines(report).join('\n')}\n`);
  if (report.exit_code !== 0) throw exitError(report);
}

const program = newProgram('cowrie-orchestrate', 'Load every sensor of a sensors.toml (several at a time), then run one refresh; never two runs at once on one database.');
addDbOptions(program)
  .option('--enrich-ips <n>', 'IPs for the refresh (0: every stale one; env COWRIE_ENRICH_IPS; default [enrichment] ip_batch_size, else 1000)')
  .option('--skip-enrich', 'load only; no refresh')
  .option('--only <names...>', 'load only these sensors (names as in [[sensor]] name; repeatable or comma-separated)')
  .option('--concurrency <n>', `sensors loaded at the same time (1 to ${MAX_CONCURRENCY}, default 2)`)
  .option('--dry-run', 'print the plan (sensors, paths, file counts, the refresh) and exit; touches nothing')
  .option('--wait', 'when another run holds the lock, wait for it instead of exiting 75')
  .option('--json', 'print the result as one JSON object on stdout (logs stay on stderr)')
  .option('--status-dir <dir>', 'status JSON files, orchestrate.json among them (env COWRIE_STATUS_DIR)')
  .addOption(new Option('--batch-size <n>', 'events per load transaction').default(undefined).hideHelp())
  .option('-v, --verbose', 'log [INFO] lines instead of progress')
  .option('-q, --quiet', 'print nothing but errors (and --json)')
  .addHelpText('after', '\nExit codes: 0 all went well; 1 a sensor, the MaxMind update or the refresh failed (named in the table);\n2 bad config or database; 75 another run holds the lock (try later, or --wait); 130 interrupted.')
  .action((opts: OrchestrateOpts) => run(opts));

await runProgram(program);
