/**
 * Core modules never print; they report through a Logger the CLI hands in.
 * Lines follow the Python original's `[INFO] …` style so users' greps keep working.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Extra detail, shown only with --verbose. */
  debug(message: string): void;
  /** An INFO line shown even without --verbose (not a problem, but the user must know). */
  notice?(message: string): void;
}

/** logger.notice where the logger has it, else an INFO line. */
export function notice(logger: Logger, message: string): void {
  if (logger.notice) logger.notice(message);
  else logger.info(message);
}

export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
  debug() {},
};

/** A logger that collects lines, for tests and for callers that print later. */
export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  info(m: string): void { this.lines.push(`[INFO] ${m}`); }
  warn(m: string): void { this.lines.push(`[WARNING] ${m}`); }
  error(m: string): void { this.lines.push(`[ERROR] ${m}`); }
  debug(m: string): void { this.lines.push(`[DEBUG] ${m}`); }
}

/** Thousands separators as the guide prints them: 12,583. */
export function fmt(n: number): string {
  return n.toLocaleString('en-US');
}
