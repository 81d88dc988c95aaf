import type { Command } from 'commander';
import { kebab, loadConfigFile, resolveConfig } from '../config/config.js';
import { UserError, UsageError } from '../errors.js';
import { LiveEnricher, type LiveFigures } from '../enrich/live.js';
import { Follower, type FollowStats } from '../ingest/follow.js';
import { DEFAULT_BATCH_SIZE, ingest, type IngestSummary } from '../ingest/ingest.js';
import { ingestFailure } from '../ingest/outcome.js';
import { fmt, notice } from '../log.js';
import { escapeControl } from '../text.js';
import { StatusEmitter, statusTimestamp } from '../status/emitter.js';
import { FollowMetrics, parseListenAddress, serveMetrics, type MetricsServer } from '../status/metrics.js';
import { createProgress, progressIntervalMs, progressMode } from '../status/progress.js';
import { openStore } from '../store/store.js';
import { parseDbUrl } from '../store/url.js';
import { addDbOptions, consoleLogger, dbFlag, interruptSignal, newProgram, runProgram } from './main.js';
import { sourceOptions } from './source-options.js';

interface LoaderOpts {
  db?: string; database?: string; config?: string; sensor?: string; batchSize?: string;
  statusDir?: string; verbose?: boolean; quiet?: boolean; metrics?: string; enrich?: boolean; fast?: boolean;
  /** follow --enrich: every source's own flags (declared in src/enrich/sources/), as for `cowrie-enrich refresh`. */
  [flag: string]: unknown;
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

function parseBatchSize(text: string | undefined): number {
  const batchSize = text === undefined ? DEFAULT_BATCH_SIZE : Number(text);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1_000_000) throw new UsageError(`--batch-size must be a whole number from 1 to 1000000, got ${text}`);
  return batchSize;
}

async function run(mode: 'bulk' | 'delta', paths: string[], opts: LoaderOpts): Promise<void> {
  const cfg = resolveConfig({ db: dbFlag(opts), statusDir: opts.statusDir }, process.env, loadConfigFile(opts.config, process.env));
  const batchSize = parseBatchSize(opts.batchSize);
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
  const failure = ingestFailure(summary);
  if (failure) throw failure;
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

/** Seconds between rewrites of <status_dir>/follow.json. */
const FOLLOW_STATUS_MS = 5000;

/** follow.json: what a monitor needs to tell a healthy follower from a stuck one. */
function followStatus(s: FollowStats, eventsPerSecond: number, metricsUrl: string | null, live: LiveFigures | null = null): Record<string, unknown> {
  const lagBytes = s.files.reduce((a, f) => a + f.lagBytes, 0);
  const lagSeconds = s.files.reduce((a, f) => Math.max(a, f.lagSeconds), 0);
  return {
    files: s.files.map((f) => ({ path: f.path, state: f.state, offset: f.offset, size: f.size, lag_bytes: f.lagBytes, lag_seconds: Number(f.lagSeconds.toFixed(1)) })),
    waiting_for: s.waitingFor, watching: s.watching,
    lag_bytes: lagBytes, lag_seconds: Number(lagSeconds.toFixed(1)), events_per_second: Math.round(eventsPerSecond),
    events_read: s.eventsRead, inserted: s.inserted, duplicates: s.duplicates, dead_lettered: s.deadLettered, dead_lettered_new: s.deadLetteredNew,
    cleaned: s.cleaned, new_sessions: s.newSessions, new_ips: s.newIps, commits: s.commits,
    last_commit: s.lastCommitAt === null ? null : statusTimestamp(s.lastCommitAt),
    last_error: s.lastError, last_error_at: s.lastErrorAt === null ? null : statusTimestamp(s.lastErrorAt),
    queues: live?.queue ?? {}, metrics_url: metricsUrl,
    ...(live ? {
      enrichment: {
        cycles: live.cycles, last_cycle: live.lastCycleAt === null ? null : statusTimestamp(live.lastCycleAt),
        quota_left: live.quotaLeft, last_error: live.lastError,
      },
    } : {}),
  };
}

async function runFollow(paths: string[], opts: LoaderOpts): Promise<void> {
  const { db, database, config: configFile, sensor, batchSize: _b, verbose, quiet, metrics: _m, enrich, ...flags } = opts;
  // Without --enrich the sources' settings are not read: one given anyway is a mistake, not ignored.
  const stray = Object.keys(flags).find((k) => k !== 'statusDir' && flags[k] !== undefined);
  if (!enrich && stray) throw new UsageError(`${kebab(stray)} is an enrichment setting: give --enrich with it`);
  const cfg = resolveConfig({ ...(enrich ? flags : { statusDir: opts.statusDir }), db: dbFlag({ db, database }) }, process.env, loadConfigFile(configFile, process.env));
  const batchSize = parseBatchSize(opts.batchSize);
  const listen = opts.metrics === undefined ? null : parseListenAddress(opts.metrics);
  const logger = consoleLogger(opts);
  logger.info(`Using database ${parseDbUrl(cfg.db).display}`);
  const status = new StatusEmitter({ dir: cfg.statusDir, logger, minIntervalMs: FOLLOW_STATUS_MS });
  status.prepare();
  const signal = interruptSignal();
  const store = await openStore(cfg.db);
  let enrichStore: Awaited<ReturnType<typeof openStore>> | null = null;
  let enriching: Promise<void> | null = null;
  // Stops the enrichment loop on SIGTERM/SIGINT, and when following fails (else it would run on).
  const stopEnrich = new AbortController();
  signal.addEventListener('abort', () => stopEnrich.abort(), { once: true });
  let server: MetricsServer | null = null;
  let timer: NodeJS.Timeout | undefined;
  let stats: FollowStats;
  try {
    let follower: Follower | null = null;
    let live: LiveEnricher | null = null;
    const metrics = new FollowMetrics(() => {
      const s = follower?.stats();
      const l = live?.figures();
      return {
        lagBytes: s ? s.files.reduce((a, f) => a + f.lagBytes, 0) : 0, lagSeconds: s ? s.files.reduce((a, f) => Math.max(a, f.lagSeconds), 0) : 0,
        filesFollowed: s ? s.files.length : 0, lastCommitAt: s?.lastCommitAt ?? null, queue: l?.queue, quotaLeft: l?.quotaLeft,
      };
    });
    if (enrich) {
      // PostgreSQL: its own connection, so enrichment commits do not wait behind the loader's (nor the
      // reverse). SQLite: the loader's, whose lock serialises the two; a second connection in this
      // process would block the event loop in the busy timeout while the other holds the write lock.
      enrichStore = parseDbUrl(cfg.db).dialect === 'postgres' ? await openStore(cfg.db) : null;
      const l = new LiveEnricher(enrichStore ?? store, { config: cfg, logger, signal: stopEnrich.signal, onCycle: (r) => metrics.refreshed(r) });
      live = l;
      enriching = l.run();
      enriching.catch(() => {}); // awaited below
    }
    if (listen) {
      server = await serveMetrics(metrics.registry, listen);
      notice(logger, `Serving metrics on ${server.url}`);
    }
    follower = new Follower(store, {
      paths, sensor, batchSize, logger, signal,
      onCommit: (r) => {
        metrics.committed(r);
        live?.newIps(r.newIps);
      },
    });
    const f = follower;
    let lastRead = 0;
    let lastAt = Date.now();
    const writeStatus = () => {
      const s = f.stats();
      const now = Date.now();
      const eps = now > lastAt ? ((s.eventsRead - lastRead) * 1000) / (now - lastAt) : 0;
      lastRead = s.eventsRead;
      lastAt = now;
      status.update('follow', followStatus(s, eps, server?.url ?? null, live?.figures() ?? null), { force: true });
    };
    writeStatus();
    timer = setInterval(writeStatus, FOLLOW_STATUS_MS);
    stats = await f.run();
    clearInterval(timer);
    await enriching;
    status.finish('complete', followStatus(stats, 0, server?.url ?? null, live?.figures() ?? null));
  } catch (err) {
    status.finish('failed');
    throw err;
  } finally {
    clearInterval(timer);
    stopEnrich.abort();
    await enriching?.catch(() => {});
    await server?.close();
    await enrichStore?.close();
    await store.close();
  }
  if (!quiet) {
    const secs = (Date.now() - stats.startedAt) / 1000;
    process.stdout.write(`follow stopped: events_read=${fmt(stats.eventsRead)} inserted=${fmt(stats.inserted)} duplicates=${fmt(stats.duplicates)} `
      + `dead_lettered=${fmt(stats.deadLettered)} (new ${fmt(stats.deadLetteredNew)}, already known ${fmt(stats.deadLettered - stats.deadLetteredNew)}) `
      + `cleaned=${fmt(stats.cleaned)} new_sessions=${fmt(stats.newSessions)} new_ips=${fmt(stats.newIps)} commits=${fmt(stats.commits)} seconds=${secs.toFixed(1)}\n`);
  }
}

const program = newProgram('cowrie-loader', 'Load Cowrie JSON logs (plain, gzip, bzip2) into the database.');
addLoaderOptions(program.command('bulk').description('load whole files (already loaded events are recognised and skipped)'))
  .option('--fast', 'first load into an EMPTY database only: journal off, unique key built at the end (about twice as fast; an interrupted --fast load leaves the database unusable: delete it and load again)')
  .action((paths: string[], opts: LoaderOpts) => run('bulk', paths, opts));
addLoaderOptions(program.command('delta').description('load only what was appended since the last run (cursor per file)'))
  .action((paths: string[], opts: LoaderOpts) => run('delta', paths, opts));
sourceOptions(addLoaderOptions(program.command('follow').description('load what is there (like delta), then every new line within a second, through rotations, until SIGTERM or Ctrl-C'))
  .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
  .option('--enrich', 'enrich new IPs (and stale or pending ones) and new file hashes while following, with the same sources and settings as `cowrie-enrich refresh`')
  .option('--commit-interval <n>', 'enrichment: rows per commit (default 100)'))
  .action((paths: string[], opts: LoaderOpts) => runFollow(paths, opts));

await runProgram(program);
