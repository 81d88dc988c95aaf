import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { UserError, errorMessage, redactUrlsIn } from '../errors.js';
import { escapeControl } from '../text.js';
import type { Logger } from '../log.js';

export const VERSION = '0.1.0';

/** The only place that prints errors and exits (docs/ARCHITECTURE.md: one line, no stack trace). */
export async function runProgram(program: Command, argv: string[] = process.argv): Promise<void> {
  program.exitOverride();
  for (const c of program.commands) c.exitOverride();
  let code = 0;
  try {
    await program.parseAsync(argv);
  } catch (err) {
    code = exitCodeFor(program.name(), err);
  }
  // Let stdout drain; pending handles (pools, timers) must not keep us alive.
  process.exitCode = code;
  setImmediate(() => process.exit(code)).unref();
}

/** Error codes that mean "the disk is full", from Node, SQLite and PostgreSQL. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', '53100']);

/** One printable line: no terminal control characters, no credentials in URLs. */
export function safeLine(text: string): string {
  return escapeControl(redactUrlsIn(text));
}

function exitCodeFor(name: string, err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return 2; // commander already printed the message, with our prefix (newProgram)
  }
  if (err instanceof UserError) {
    process.stderr.write(`${name}: error: ${safeLine(err.message)}\n`);
    return err.exitCode;
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && DISK_FULL.has(code)) {
    // Committed batches are intact (each is one transaction); the run stops where the disk did.
    process.stderr.write(`${name}: error: disk full (${code}): ${safeLine(errorMessage(err))}; committed work is kept, free space and run again\n`);
    return 1;
  }
  process.stderr.write(`${name}: internal error (please report this as a bug):\n${safeLine((err as Error)?.stack ?? String(err)).replaceAll('\\x0a', '\n')}\n`);
  return 70;
}

export function newProgram(name: string, description: string): Command {
  // commander's own errors ("error: unknown option …") get the command's prefix like ours;
  // subcommands inherit this output configuration.
  return new Command(name)
    .description(description)
    .version(VERSION, '-V, --version')
    .configureOutput({ outputError: (text, write) => write(`${name}: ${safeLine(text.trimEnd())}\n`) });
}

/** --db URL, also spelled --database (the Python original's real flag name). */
export function addDbOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--db <url>', 'database URL: sqlite:PATH, sqlite:///rel.db, postgresql://… (env COWRIE_DB_URL; default sqlite:cowrie.sqlite)'))
    .addOption(new Option('--database <url>', 'alias of --db').hideHelp())
    .addOption(new Option('--config <file>', 'TOML config file (env COWRIE_CONFIG; default ./cowrie.toml when present)'));
}

export function dbFlag(opts: { db?: string; database?: string }): string | undefined {
  return opts.db ?? opts.database;
}

/** [INFO] lines on stderr, like the Python original's logging; debug only when verbose. */
export function consoleLogger(opts: { verbose?: boolean; quiet?: boolean }, write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Logger {
  // Messages carry attacker text (file names, paths) and URLs: escape and redact every one.
  const out = (line: string) => write(safeLine(line));
  return {
    info: (m) => { if (opts.verbose) out(`[INFO] ${m}`); },
    warn: (m) => { if (!opts.quiet) out(`[WARNING] ${m}`); },
    error: (m) => out(`[ERROR] ${m}`),
    debug: (m) => { if (opts.verbose) out(`[DEBUG] ${m}`); },
    notice: (m) => { if (!opts.quiet) out(`[INFO] ${m}`); },
  };
}

/** First Ctrl-C asks the run to stop cleanly (committed data stays); a second one exits at once. */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  let count = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      process.stderr.write(`\n${sig}: stopping after the current batch (press Ctrl-C again to quit now)\n`);
      ac.abort(new UserError(`interrupted by ${sig}`, 130));
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return ac.signal;
}

/** Where refresh status files go without --status-dir / COWRIE_STATUS_DIR / status_dir. */
export function defaultStatusDir(): string {
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'cowrie-enrich', 'status');
}
