/**
 * Progress of a long run, on stderr only. On a terminal: one line redrawn in place (a bar, the
 * step, counts, rate-based ETA). Without a terminal: a plain `[INFO] progress: …` line every
 * interval (default 10 s, env COWRIE_PROGRESS_INTERVAL in seconds), so a cron log shows the run is
 * alive; no control characters. With --verbose the [INFO] lines already say it all; with --quiet
 * nothing is shown.
 */
import { UsageError } from '../errors.js';
import { fmt } from '../log.js';

export type ProgressMode = 'bar' | 'lines' | 'off';

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** The command's name for the line: `refresh`, `ingest`. */
  label: string;
  mode: ProgressMode;
  stream?: ProgressStream;
  /** Lines mode: time between lines. */
  intervalMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface Progress {
  /** The run is at `done` of `total` in `step` (`unit` names what is counted); `detail` is appended. */
  update(step: string, done: number, total: number, unit: string, detail?: string): void;
  /** Print a log line without tearing the bar: clear it, print, draw it again. */
  writeLine(line: string): void;
  stop(): void;
}

export const DEFAULT_PROGRESS_INTERVAL_MS = 10_000;
/** Terminal redraws at most this often within a step (every new step is drawn at once). */
const REDRAW_MS = 100;
const BAR_WIDTH = 20;

/** Which display fits: a bar on a terminal, periodic lines otherwise; none when verbose or quiet. */
export function progressMode(opts: { verbose?: boolean; quiet?: boolean }, stream: ProgressStream = process.stderr): ProgressMode {
  if (opts.quiet || opts.verbose) return 'off';
  return stream.isTTY ? 'bar' : 'lines';
}

/** COWRIE_PROGRESS_INTERVAL (seconds, > 0) or the 10 s default. */
export function progressIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.COWRIE_PROGRESS_INTERVAL;
  if (raw === undefined || raw === '') return DEFAULT_PROGRESS_INTERVAL_MS;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0 || s > 86_400) throw new UsageError(`COWRIE_PROGRESS_INTERVAL must be a number of seconds from 0 to 86400, got ${JSON.stringify(raw)}`);
  return Math.max(1, Math.round(s * 1000));
}

/** `42 s`, `3 min 05 s`, `2 h 07 min`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

function formatMb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

interface StepState {
  step: string;
  done: number;
  total: number;
  unit: string;
  detail: string;
  startedAt: number;
}

/** The figures of one moment as text: `pass 2/3 Cymru 1,500/4,000 IPs (37%), 12 s, ETA 20 s`. */
export function describeStep(s: StepState, now: number): { counts: string; percent: number; timing: string } {
  const total = Math.max(s.total, 0);
  const done = Math.min(Math.max(s.done, 0), total || s.done);
  const percent = total > 0 ? Math.floor((done / total) * 100) : 0;
  const elapsed = (now - s.startedAt) / 1000;
  // The rate is this step's own: earlier steps run at other speeds.
  const eta = done > 0 && total > done && elapsed >= 1 ? formatDuration(((total - done) * elapsed) / done) : total > 0 && done >= total ? '0 s' : '--';
  return {
    counts: s.unit === 'bytes' ? `${formatMb(done)}/${formatMb(total)} MB` : `${fmt(done)}/${fmt(total)} ${s.unit}`,
    percent,
    timing: `${formatDuration(elapsed)}, ETA ${eta}`,
  };
}

function plainProgress(stream: ProgressStream): Progress {
  return { update() {}, writeLine: (line) => stream.write(`${line}\n`), stop() {} };
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.mode === 'off') return plainProgress(stream);
  const now = opts.now ?? Date.now;
  let current: StepState | null = null;
  let stopped = false;

  if (opts.mode === 'lines') {
    const line = (): string => {
      if (!current) return `[INFO] progress: ${opts.label} starting`;
      const d = describeStep(current, now());
      return `[INFO] progress: ${opts.label} ${current.step} ${d.counts} (${d.percent}%)${current.detail ? `, ${current.detail}` : ''}, ${d.timing}`;
    };
    const timer = setInterval(() => stream.write(`${line()}\n`), opts.intervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS);
    timer.unref();
    return {
      update(step, done, total, unit, detail = '') {
        if (stopped) return;
        current = current?.step === step ? { ...current, done, total, unit, detail } : { step, done, total, unit, detail, startedAt: now() };
      },
      writeLine: (l) => stream.write(`${l}\n`),
      stop() {
        stopped = true;
        clearInterval(timer);
      },
    };
  }

  let lastDraw = -Infinity;
  let drawn = false;
  const draw = (): void => {
    if (stopped) return;
    lastDraw = now();
    let text: string;
    if (!current) {
      text = `${opts.label}: starting…`;
    } else {
      const d = describeStep(current, lastDraw);
      const filled = Math.round((d.percent / 100) * BAR_WIDTH);
      text = `${opts.label} ${current.step} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(d.percent).padStart(3)}% ${d.counts}${current.detail ? ` | ${current.detail}` : ''} | ${d.timing}`;
    }
    // A pseudo-terminal may report 0 columns: take a common width then.
    const width = (stream.columns || 100) - 1;
    if (text.length > width) text = `${text.slice(0, Math.max(width - 1, 0))}…`;
    // Carriage return, the text, then erase what a longer earlier frame left on the line.
    stream.write(`\r${text}\x1b[K`);
    drawn = true;
  };
  // The clock moves even when the counts do not (a slow source): redraw every second.
  const ticker = setInterval(draw, 1000);
  ticker.unref();
  draw();
  return {
    update(step, done, total, unit, detail = '') {
      if (stopped) return;
      const newStep = current?.step !== step;
      current = newStep ? { step, done, total, unit, detail, startedAt: now() } : { ...current!, done, total, unit, detail };
      if (newStep || now() - lastDraw >= REDRAW_MS) draw();
    },
    writeLine(l) {
      if (stopped || !drawn) {
        stream.write(`${l}\n`);
        return;
      }
      stream.write(`\r\x1b[K${l}\n`);
      draw();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(ticker);
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}

/** Refresh steps as the status files name them → what the display says and counts. */
const REFRESH_STEPS: Record<string, { step: string; unit: string; done: string; total: string }> = {
  sessions: { step: 'sessions', unit: 'sessions', done: 'sessions_processed', total: 'sessions_total' },
  files: { step: 'files (VirusTotal)', unit: 'files', done: 'files_processed', total: 'files_total' },
  pass_1_maxmind: { step: 'pass 1/3 MaxMind', unit: 'IPs', done: 'ips_processed', total: 'ips_total' },
  pass_2_cymru: { step: 'pass 2/3 Cymru', unit: 'IPs', done: 'ips_processed', total: 'ips_total' },
  pass_3_merge: { step: 'pass 3/3 merge + GreyNoise', unit: 'IPs', done: 'ips_processed', total: 'ips_total' },
};

/** Feed a refresh status update (phase + fields) into a progress display. */
export function refreshStatusToProgress(progress: Progress): (phase: string, fields: Record<string, unknown>) => void {
  return (phase, fields) => {
    const s = REFRESH_STEPS[phase];
    if (!s) return;
    const done = Number(fields[s.done] ?? 0);
    const total = Number(fields[s.total] ?? 0);
    if (!Number.isFinite(done) || !Number.isFinite(total)) return;
    progress.update(s.step, done, total, s.unit);
  };
}
