/**
 * cowrie-orchestrate's run: every planned sensor loaded (up to `concurrency` at once, in this
 * process, the sensor's name on its rows), then one refresh as `cowrie-enrich refresh` runs it.
 * A sensor that fails is reported and the others go on; the report says what happened to each.
 */
import type { Config } from '../config/config.js';
import type { RefreshResult } from '../enrich/refresh.js';
import { UserError, errorMessage } from '../errors.js';
import { ingest, type IngestProgress, type IngestSummary } from '../ingest/ingest.js';
import { ingestFailure } from '../ingest/outcome.js';
import type { Logger } from '../log.js';
import type { StatusEmitter } from '../status/emitter.js';
import type { Store } from '../store/store.js';
import { maxmindStep, type MaxmindStepResult, type MaxmindUpdatePlan } from './maxmind-step.js';
import type { RunPlan, SensorPlan } from './plan.js';
import { refreshDoneLine, refreshFailure, runRefresh } from './refresh-run.js';

export type Outcome = 'ok' | 'failed' | 'skipped';

export interface SensorReport {
  name: string;
  outcome: Outcome;
  files: number;
  events: number;
  new_sessions: number;
  new_ips: number;
  dead_letters: number;
  seconds: number;
  error: string | null;
}

export interface RefreshReport {
  outcome: Outcome;
  sessions: number;
  files: number;
  ips_selected: number;
  ips_enriched: number;
  ip_errors: number;
  failed_sources: string[];
  seconds: number;
  /** The line `cowrie-enrich refresh` prints at its end. */
  summary: string | null;
  error: string | null;
}

export interface OrchestrateReport {
  sensors: SensorReport[];
  refresh: RefreshReport;
  maxmind_update: MaxmindStepResult | null;
  exit_code: number;
}

export type ReportState = 'running' | 'complete' | 'failed' | 'aborted';

export interface LoadProgress {
  sensorsDone: number;
  sensorsTotal: number;
  bytesRead: number;
  bytesTotal: number;
  eventsRead: number;
}

export interface OrchestrateOptions {
  plan: RunPlan;
  config: Config;
  concurrency: number;
  batchSize?: number;
  logger: Logger;
  signal?: AbortSignal;
  /** Status files of the refresh, as `cowrie-enrich refresh` writes them. */
  refreshStatus: StatusEmitter;
  /** `[maxmind] auto_update`: what to update first; null: no update step. */
  maxmind?: MaxmindUpdatePlan | null;
  /** Called whenever the report changes (orchestrate.json). */
  onReport?: (r: OrchestrateReport, state: ReportState) => void;
  onLoadProgress?: (p: LoadProgress) => void;
  /** Called when loading is over and the refresh starts (the CLI switches its progress display). */
  onRefreshStart?: () => void;
}

const INTERRUPTED = 'interrupted: committed batches are kept; run again to continue';

function emptySensor(name: string, outcome: Outcome, error: string | null): SensorReport {
  return { name, outcome, files: 0, events: 0, new_sessions: 0, new_ips: 0, dead_letters: 0, seconds: 0, error };
}

function emptyRefresh(outcome: Outcome, error: string | null): RefreshReport {
  return { outcome, sessions: 0, files: 0, ips_selected: 0, ips_enriched: 0, ip_errors: 0, failed_sources: [], seconds: 0, summary: null, error };
}

/** The exit code a run's outcomes add up to: 130 interrupted, 2 a database/config problem, 1 something failed. */
function exitCode(r: OrchestrateReport, codes: number[]): number {
  if (codes.includes(130)) return 130;
  if (codes.includes(2)) return 2;
  const failed = r.sensors.some((s) => s.outcome === 'failed') || r.refresh.outcome === 'failed' || r.maxmind_update?.outcome === 'failed';
  return failed || codes.length ? 1 : 0;
}

/** A logger whose lines say which sensor they are about (loads run side by side). */
function sensorLogger(logger: Logger, name: string): Logger {
  return {
    info: (m) => logger.info(`${name}: ${m}`),
    warn: (m) => logger.warn(`${name}: ${m}`),
    error: (m) => logger.error(`${name}: ${m}`),
    debug: (m) => logger.debug(`${name}: ${m}`),
  };
}

export async function orchestrate(store: Store, o: OrchestrateOptions): Promise<OrchestrateReport> {
  const { logger } = o;
  const report: OrchestrateReport = {
    sensors: o.plan.sensors.map((p) => emptySensor(p.sensor.name, 'skipped', p.skipped)),
    refresh: emptyRefresh('skipped', o.plan.refresh ? null : '--skip-enrich'),
    maxmind_update: null,
    exit_code: 0,
  };
  /** Exit codes of errors met on the way (beyond plain failed outcomes). */
  const codes: number[] = [];
  const publish = (state: ReportState) => {
    report.exit_code = exitCode(report, codes);
    o.onReport?.(report, state);
  };
  publish('running');

  if (o.maxmind) {
    report.maxmind_update = await maxmindStep(o.maxmind, { logger, signal: o.signal });
    publish('running');
  }

  await loadSensors(store, o, report, codes, publish);

  if (o.plan.refresh && !o.signal?.aborted) {
    o.onRefreshStart?.();
    report.refresh = await refreshStep(store, o, codes);
  } else if (o.plan.refresh) {
    report.refresh = emptyRefresh('skipped', 'interrupted before the refresh');
  }
  report.exit_code = exitCode(report, codes);
  publish(report.exit_code === 130 ? 'aborted' : report.exit_code === 0 ? 'complete' : 'failed');
  return report;
}

async function loadSensors(store: Store, o: OrchestrateOptions, report: OrchestrateReport, codes: number[], publish: (s: ReportState) => void): Promise<void> {
  const queue = o.plan.sensors.map((p, i) => ({ p, i })).filter(({ p }) => p.skipped === null);
  const progress = new Map<number, IngestProgress>();
  let done = 0;
  const tell = () => {
    let bytesRead = 0, bytesTotal = 0, eventsRead = 0;
    for (const p of progress.values()) { bytesRead += p.bytesRead; bytesTotal += p.bytesTotal; eventsRead += p.eventsRead; }
    o.onLoadProgress?.({ sensorsDone: done, sensorsTotal: queue.length, bytesRead, bytesTotal, eventsRead });
  };
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const { p, i } = next;
      if (o.signal?.aborted) {
        report.sensors[i] = emptySensor(p.sensor.name, 'skipped', 'interrupted before it started');
        continue;
      }
      report.sensors[i] = await loadOne(store, p, o, codes, (pr) => { progress.set(i, pr); tell(); });
      done++;
      tell();
      publish('running');
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, queue.length)) }, worker));
}

async function loadOne(store: Store, p: SensorPlan, o: OrchestrateOptions, codes: number[], onProgress: (p: IngestProgress) => void): Promise<SensorReport> {
  const { name, logpaths, mode } = p.sensor;
  const log = sensorLogger(o.logger, name);
  const started = Date.now();
  log.info(`loading ${logpaths.length} path(s) in ${mode} mode`);
  let s: IngestSummary;
  try {
    s = await ingest(store, { paths: logpaths, mode, sensor: name, batchSize: o.batchSize, logger: log, signal: o.signal, onProgress });
  } catch (err) {
    const code = err instanceof UserError ? err.exitCode : 1;
    if (code !== 1) codes.push(code);
    const error = errorMessage(err);
    log.error(error);
    return { ...emptySensor(name, 'failed', error), seconds: (Date.now() - started) / 1000 };
  }
  const failure = s.interrupted ? new UserError(INTERRUPTED, 130) : ingestFailure(s);
  if (failure?.exitCode === 130) codes.push(130);
  if (failure) log.error(failure.message);
  return {
    name, outcome: failure ? 'failed' : 'ok', files: s.files, events: s.eventsRead, new_sessions: s.sessions, new_ips: s.newIps,
    dead_letters: s.deadLettered, seconds: (Date.now() - started) / 1000, error: failure?.message ?? null,
  };
}

async function refreshStep(store: Store, o: OrchestrateOptions, codes: number[]): Promise<RefreshReport> {
  const r = o.plan.refresh!;
  const started = Date.now();
  let result: RefreshResult;
  try {
    result = await runRefresh(store, {
      sessions: r.sessions, files: r.files, ips: r.ips, ipList: [], config: o.config, logger: o.logger,
      status: o.refreshStatus, signal: o.signal, leaveOutSensors: r.leaveOutSensors,
    });
  } catch (err) {
    const code = err instanceof UserError ? err.exitCode : 1;
    if (code !== 1) codes.push(code);
    const error = errorMessage(err);
    o.logger.error(`refresh: ${error}`);
    return { ...emptyRefresh('failed', error), seconds: (Date.now() - started) / 1000 };
  }
  const failure = refreshFailure(result);
  return {
    outcome: failure ? 'failed' : 'ok',
    sessions: result.sessions + result.sessionsAfterIps,
    files: result.files?.updated ?? 0,
    ips_selected: result.ips?.selected ?? 0,
    ips_enriched: result.ips?.enriched ?? 0,
    ip_errors: result.ips?.errors ?? 0,
    failed_sources: [...new Set(result.failedSources)],
    seconds: (Date.now() - started) / 1000,
    summary: refreshDoneLine(result),
    error: failure?.message ?? null,
  };
}
