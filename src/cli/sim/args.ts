/** Argument parsers and the serve-until-signal loop shared by the `cowrie-sim` subcommands. */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { UsageError } from '../../errors.js';

export function intArg(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

export function probabilityArg(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a probability from 0 to 1');
  return n;
}

/** The key from a file (first line, trimmed), so it never shows in `ps`. */
export function readKeyFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the API key file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const key = text.split(/\r?\n/)[0].trim();
  if (!key) throw new UsageError(`the API key file ${path} is empty`);
  return key;
}

export function waitForStopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
