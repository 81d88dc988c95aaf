/**
 * A stand-in for a running Cowrie: appends event lines to a live log and rotates it the ways Cowrie
 * and logrotate do. Used by the follow tests (as a separate process) and by bench/follow.bench.ts.
 *
 *   node dist/bench/lib/live-writer.js '{"target": "logs/cowrie.json", "truth": "all.json",
 *     "steps": [{"write": [0, 100]}, {"rotate": "cowrie.json.2024-01-01"}, {"write": [100, 150], "rate": 500}]}'
 *
 * `write: [from, to]` appends events from..to-1 (`rate` lines/s, else at once); `rotate` renames the
 * file in its folder and opens a new one (Cowrie's daily rotation); `copytruncate` copies it and
 * truncates it in place (logrotate copytruncate); `recreate` deletes it and creates a new one. Every
 * line written also goes to `truth`, so a test can bulk-load exactly what was written.
 */
import { closeSync, copyFileSync, ftruncateSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const TYPES = ['cowrie.session.connect', 'cowrie.login.failed', 'cowrie.login.success', 'cowrie.command.input', 'cowrie.session.closed'] as const;
/** Events per session: connect, a failed and a good login, a command, closed. */
export const EVENTS_PER_SESSION = TYPES.length;
const BASE_MS = Date.UTC(2024, 0, 1);

/**
 * Event `i`: sessions of five events from 250 public IPs (documentation ranges are not used: they
 * would be skipped by enrichment). `atMs` sets the timestamp (the bench: the write time).
 * `freshIpEvery` k: every k-th session comes from an IP never seen before instead (last octet
 * 251-254, so never one of the 250), for a steady arrival of new IPs.
 */
export function eventLine(i: number, atMs?: number, freshIpEvery?: number): string {
  const s = Math.floor(i / EVENTS_PER_SESSION);
  const type = TYPES[i % EVENTS_PER_SESSION];
  const ms = atMs ?? BASE_MS + i * 10;
  const timestamp = `${new Date(ms).toISOString().slice(0, 23)}${String(i % 1000).padStart(3, '0')}Z`;
  const n = freshIpEvery && s % freshIpEvery === 0 ? s / freshIpEvery : null;
  const ip = n === null
    ? `${11 + (s % 5)}.${(s * 7) % 250}.${(s * 13) % 250}.${1 + (s % 250)}`
    : `${11 + (n % 5)}.${Math.floor(n / 5) % 250}.${Math.floor(n / 1250) % 250}.${251 + (Math.floor(n / 312_500) % 4)}`;
  const e: Record<string, unknown> = { eventid: type, session: s.toString(16).padStart(12, '0'), timestamp, src_ip: ip, sensor: 'live-1', message: type };
  if (type === 'cowrie.login.failed' || type === 'cowrie.login.success') Object.assign(e, { username: 'root', password: `pw${s % 17}` });
  if (type === 'cowrie.command.input') e.input = `uname -a; echo ${s}`;
  if (type === 'cowrie.session.closed') e.duration = (s % 30) + 0.5;
  return JSON.stringify(e);
}

export type WriterStep =
  | { write: [number, number]; rate?: number }
  | { rotate: string }
  | { copytruncate: string }
  | { recreate: true }
  | { pauseMs: number };

export interface WriterPlan { target: string; truth?: string; steps: WriterStep[] }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LiveWriter {
  readonly target: string;
  #fd: number;
  readonly #truth: number | null;
  /** eventLine's freshIpEvery (the bench's steady new IPs). */
  freshIpEvery: number | undefined;

  constructor(target: string, truth?: string) {
    this.target = target;
    mkdirSync(dirname(target), { recursive: true });
    this.#fd = openSync(target, 'a');
    this.#truth = truth ? openSync(truth, 'a') : null;
  }

  /** Append whole lines (one write each, as Cowrie's logger does). */
  append(lines: string[]): void {
    const text = lines.map((l) => `${l}\n`).join('');
    writeSync(this.#fd, text);
    if (this.#truth !== null) writeSync(this.#truth, text);
  }

  async write(from: number, to: number, rate?: number, stamp = false): Promise<void> {
    if (!rate) {
      for (let i = from; i < to; i += 1000) {
        const lines: string[] = [];
        for (let k = i; k < Math.min(to, i + 1000); k++) lines.push(eventLine(k, stamp ? Date.now() : undefined, this.freshIpEvery));
        this.append(lines);
      }
      return;
    }
    const started = Date.now();
    let i = from;
    while (i < to) {
      // Lines due by now at this rate, written in one go every ~10 ms.
      const due = Math.min(to, from + Math.floor(((Date.now() - started) * rate) / 1000) + 1);
      const lines: string[] = [];
      for (; i < due; i++) lines.push(eventLine(i, stamp ? Date.now() : undefined, this.freshIpEvery));
      if (lines.length) this.append(lines);
      await sleep(10);
    }
  }

  rotate(newName: string): void {
    closeSync(this.#fd);
    renameSync(this.target, join(dirname(this.target), newName));
    this.#fd = openSync(this.target, 'a');
  }

  copytruncate(copyName: string): void {
    copyFileSync(this.target, join(dirname(this.target), copyName));
    ftruncateSync(this.#fd, 0);
  }

  recreate(): void {
    closeSync(this.#fd);
    unlinkSync(this.target);
    this.#fd = openSync(this.target, 'a');
  }

  close(): void {
    closeSync(this.#fd);
    if (this.#truth !== null) closeSync(this.#truth);
  }
}

export async function runPlan(plan: WriterPlan): Promise<void> {
  const w = new LiveWriter(plan.target, plan.truth);
  try {
    for (const step of plan.steps) {
      if ('write' in step) await w.write(step.write[0], step.write[1], step.rate);
      else if ('rotate' in step) w.rotate(step.rotate);
      else if ('copytruncate' in step) w.copytruncate(step.copytruncate);
      else if ('recreate' in step) w.recreate();
      else await sleep(step.pauseMs);
    }
  } finally {
    w.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runPlan(JSON.parse(process.argv[2] ?? '{}') as WriterPlan);
}
