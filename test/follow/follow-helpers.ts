/** Shared by the follow tests: the loader and the writer as processes, bounded waits, /metrics parsing. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';
import type { WriterPlan } from '../../bench/lib/live-writer.js';
import { openStore, type Store } from '../../src/store/store.js';
import { ROOT } from '../helpers/cli.js';
import { count } from '../ingest/load-helpers.js';

export const LOADER = path.join(ROOT, 'dist/src/cli/cowrie-loader.js');
export const WRITER = path.join(ROOT, 'dist/bench/lib/live-writer.js');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Running { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<void> }

export function startFollow(args: string[], env?: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, [LOADER, 'follow', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** One writer process: runs its steps and exits. */
export async function write(plan: WriterPlan): Promise<void> {
  const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const c = spawn(process.execPath, [WRITER, JSON.stringify(plan)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d) => (err += d));
    c.on('exit', (code) => resolve({ code, err }));
  });
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
}

/** Wait (bounded) until `check` holds; the last value is returned for the assertion. */
export async function until<T>(what: () => Promise<T>, check: (v: T) => boolean, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = await what();
  while (!check(v) && Date.now() < deadline) {
    await sleep(50);
    v = await what();
  }
  return v;
}

/** Rows in raw_events, or 0 before the schema exists. */
export async function rows(url: string, held: Store[]): Promise<number> {
  try {
    if (!held[0]) held[0] = await openStore(url, { migrate: false });
    return await count(held[0], 'raw_events');
  } catch {
    if (held[0]) await held[0].close().catch(() => {});
    held.length = 0;
    return 0;
  }
}

export async function stop(r: Running, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  r.child.kill(signal);
  await r.exited;
}

/** Prometheus text format → `name{labels}` → value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    expect(m, `not a metrics line: ${line}`).not.toBeNull();
    out.set(m![1], Number(m![2]));
  }
  return out;
}
