import type { Command } from 'commander';
import { loadConfigFile, resolveConfig } from '../config/config.js';
import { UserError, UsageError } from '../errors.js';
import { DEFAULT_BATCH_SIZE, ingest, type IngestSummary } from '../ingest/ingest.js';
import { fmt } from '../log.js';
import { escapeControl } from '../text.js';
import { StatusEmitter } from '../status/emitter.js';
import { createProgress, progressIntervalMs, progressMode } from '../status/progress.js';
import { openStore } from '../store/store.js';
import { parseDbUrl } from '../store/url.js';
import { addDbOptions, consoleLogger, dbFlag, interruptSignal, newProgram, runProgram } from './main.js';

interface LoaderOpts {
  db?: string; database?: string; config?: string; sensor?: string; batchSize?: string;
  statusDir?: string; verbose?: boolean; quiet?: boolean; fast?: boolean;
}

/** Names in a summary line: escaped (attacker-influenced file names), at most a few. */
function names(paths: string[]): string {
  const shown = paths.slice(0, 5).map(escapeControl).join(', ');
  return paths.length > 5 ? `${shown}, … ${fmt(paths.length - 5)} more` : shown;
}

/**
 * The run in one line. `files` counts files read (found minus unchanged, failed and missing);
 * `dead_lettered` counts bad lines read, of which `new` were not in the table yet; `held_back`
 * counts last lines without a newline left for a later run.
 */
function summaryLine(s: IngestSummary): string {
  const missing = s.missing.length ? ` [${names(s.missing)}]` : '';
  const links = s.linksNotFollowed.length ? ` links_not_followed=${fmt(s.linksNotFollowed.length)}` : '';
  return `files=${fmt(s.files)} (found ${fmt(s.filesFound)}, unchanged ${fmt(s.filesSkipped)}, missing ${fmt(s.missing.length)}${missing}, failed ${fmt(s.filesFailed.length)})${links} `
    + `events_read=${fmt(s.eventsRead)} inserted=${fmt(s.inserted)} duplicates=${fmt(s.duplicates)} `
    + `dead_lettered=${fmt(s.deadLettered)} (new ${fmt(s.deadLetteredNew)}, already known ${fmt(s.deadLettered - s.deadLetteredNew)}) `
    + `held_back=${fmt(s.partialLines)} (incomplete_line ${fmt(s.heldBack.incomplete_line)}, live_file ${fmt(s.heldBack.live_file)}) cleaned=${fmt(s.cleaned)} `
    + `new_sessions=${fmt(s.sessions)} new_ips=${fmt(s.newIps)} seconds=${s.elapsedSeconds.toFixed(1)} events_per_s=${fmt(Math.round(s.eventsPerSecond))}`;
}

async function run(mode: 'bulk' | 'delta', paths: string[], opts: LoaderOpts): Promise<void> {
  const cfg = resolveConfig({ db: dbFlag(opts), statusDir: opts.statusDir }, process.env, loadConfigFile(opts.config, process.env));
  const batchSize = opts.batchSize === undefined ? DEFAULT_BATCH_SIZE : Number(opts.batchSize);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1_000_000) throw new UsageError(`--batch-size must be a whole number from 1 to 1000000, got ${opts.batchSize}`);
  const progress = createProgress({ label: 'ingest', mode: progressMode(opts), intervalMs: progressIntervalMs() });
  const logger = consoleLogger(opts, (line) => progress.writeLine(line));
  let summary: IngestSummary;
  let status: StatusEmitter;
  try {
    logger.info(`Using database ${parseDbUrl(cfg.db).display}`);
    status = new StatusEmitter({ dir: cfg.statusDir, logger });
    status.prepare();
    const signal = interruptSignal();
    const store = await openStore(cfg.db);
    try {
      summary = await ingest(store, {
        paths, mode, sensor: opts.sensor, batchSize, logger, signal, fast: opts.fast === true,
        onProgress: (p) => {
          const eps = p.elapsedSeconds > 0 ? Math.round(p.eventsRead / p.elapsedSeconds) : 0;
          progress.update('files', p.bytesRead, p.bytesTotal, 'bytes', `file ${fmt(p.filesDone)}/${fmt(p.filesTotal)}, ${fmt(p.eventsRead)} events, ${fmt(eps)} events/s`);
          status.update('ingest', {
            mode, files_done: p.filesDone, files_total: p.filesTotal, bytes_read: p.bytesRead, bytes_total: p.bytesTotal,
            events_read: p.eventsRead, inserted: p.inserted, dead_lettered: p.deadLettered, events_per_second: eps,
            current_file: p.currentFile,
          });
        },
      });
    } finally {
      await store.close();
    }
  } finally {
    progress.stop();
  }
  status.update('ingest', {
    mode, files_done: summary.filesDone, files_total: summary.filesTotal, files_read: summary.files, files_unchanged: summary.filesSkipped,
    events_read: summary.eventsRead, inserted: summary.inserted, duplicates: summary.duplicates,
    dead_lettered: summary.deadLettered, dead_lettered_new: summary.deadLetteredNew, cleaned: summary.cleaned,
    held_back: { total: summary.partialLines, ...summary.heldBack },
    new_sessions: summary.sessions, new_ips: summary.newIps, events_per_second: Math.round(summary.eventsPerSecond),
    files_failed: summary.failures.map((f) => ({ path: f.path, reason: f.reason })), missing: summary.missing, links_not_followed: summary.linksNotFollowed,
  }, { force: true });
  status.finish(summary.interrupted ? 'aborted' : summary.filesFailed.length || summary.missing.length ? 'failed' : 'complete');
  if (!opts.quiet) process.stdout.write(`${summaryLine(summary)}\n`);
  if (summary.interrupted) throw new UserError('interrupted: committed batches are kept; run again to continue from the cursor', 130);
  const bad = summary.filesFailed.length + summary.missing.length;
  if (bad === 1 && summary.failures.length === 1 && summary.failures[0].reason !== 'read_error') throw new UserError(summary.failures[0].message, 1);
  if (bad) {
    const why = [...summary.missing.map(escapeControl), ...summary.failures.map((f) => (f.reason === 'read_error' ? escapeControl(f.path) : f.message))];
    throw new UserError(`${bad} file(s) could not be loaded: ${why.join(', ')}`, 1);
  }
}

function addLoaderOptions(cmd: Command): Command {
  return addDbOptions(cmd)
    .argument('<paths...>', 'files, folders (searched recursively for cowrie.json* and *.json*) or globs')
    .option('--sensor <name>', "sensor name for these events (fills or overrides the event's sensor field)")
    .option('--batch-size <n>', 'events per transaction (a kill or a crash loses at most the open one)', String(DEFAULT_BATCH_SIZE))
    .option('--status-dir <dir>', 'write status JSON files here (env COWRIE_STATUS_DIR)')
    .option('-v, --verbose', 'log [INFO] lines instead of a progress bar')
    .option('-q, --quiet', 'print nothing but errors');
}

const program = newProgram('cowrie-loader', 'Load Cowrie JSON logs (plain, gzip, bzip2) into the database.');
addLoaderOptions(program.command('bulk').description('load whole files (already loaded events are recognised and skipped)'))
  .option('--fast', 'first load into an EMPTY database only: journal off, unique key built at the end (about twice as fast; an interrupted --fast load leaves the database unusable: delete it and load again)')
  .action((paths: string[], opts: LoaderOpts) => run('bulk', paths, opts));
addLoaderOptions(program.command('delta').description('load only what was appended since the last run (cursor per file)'))
  .action((paths: string[], opts: LoaderOpts) => run('delta', paths, opts));

await runProgram(program);
