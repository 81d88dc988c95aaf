import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateLogs, type GenerateLogsSummary } from '../../src/sim/log-generator.js';
import { openStore, type Store } from '../../src/store/store.js';
import { ROOT } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { count, load, snapshot } from './load-helpers.js';

const root = tempDir('cowrie-load-kill-');
const logs = path.join(root, 'logs');
let gen: GenerateLogsSummary;

beforeAll(async () => {
  gen = await generateLogs({ outDir: logs, sessions: 2000, ips: 200, sensors: 2, days: 2, seed: 3, faults: true, gzip: true });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startLoader(mode: 'bulk' | 'delta', url: string): ChildProcess {
  return spawn(process.execPath, [path.join(ROOT, 'dist/src/cli/cowrie-loader.js'), mode, logs, '--db', url, '--batch-size', '100', '--quiet'], { stdio: 'ignore' });
}

/** Wait until some batch is committed (rows visible to another connection), then signal the loader. */
async function killAfterFirstCommit(child: ChildProcess, url: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<number> {
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  let watcher: Store | null = null;
  let seen = 0;
  const deadline = Date.now() + 30_000;
  try {
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        watcher ??= await openStore(url, { migrate: false });
        seen = await count(watcher, 'raw_events');
      } catch {
        seen = 0; // schema not there yet
      }
      if (seen > 0) break;
      await sleep(5);
    }
    expect(child.exitCode, 'the loader finished before it could be killed').toBeNull();
    child.kill(signal);
    await exited;
    // SIGKILL ends it at once; SIGINT (Ctrl-C) lets it commit the open batch and exit 130.
    if (signal === 'SIGKILL') expect(child.signalCode).toBe('SIGKILL');
    else expect(child.exitCode).toBe(130);
    return watcher ? await count(watcher, 'raw_events') : 0;
  } finally {
    await watcher?.close();
  }
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] kill -9 or Ctrl-C mid-run`, () => {
    const open: Store[] = [];
    afterEach(async () => {
      while (open.length) await open.pop()!.close();
    });
    let clean: Awaited<ReturnType<typeof snapshot>> | null = null;
    const cleanSnapshot = async () => {
      if (!clean) {
        const s = await openStore(await d.newUrl());
        open.push(s);
        await load(s, [logs]);
        clean = await snapshot(s);
      }
      return clean;
    };

    for (const [rerun, signal] of [['delta', 'SIGKILL'], ['bulk', 'SIGKILL'], ['delta', 'SIGINT']] as const) {
      it(`a load stopped by ${signal}, then a ${rerun} run, leaves the tables of a clean single load`, async () => {
        const url = await d.newUrl();
        const atKill = await killAfterFirstCommit(startLoader(rerun === 'delta' ? 'delta' : 'bulk', url), url, signal);
        expect(atKill).toBeGreaterThan(0);
        const s = await openStore(url);
        open.push(s);
        const total = gen.events + gen.faultLines;
        const partial = await count(s, 'raw_events');
        expect(partial).toBeLessThan(gen.events);
        // Every committed batch is whole: its summaries and cursor are there with its events.
        const [sum] = await s.db.query<{ n: number | string }>('SELECT coalesce(sum(event_count), 0) AS n FROM session_summaries');
        expect(Number(sum.n)).toBe(await count(s, 'raw_events', 'WHERE session_id IS NOT NULL'));
        const r = await load(s, [logs], { mode: rerun });
        expect(r.filesFailed).toEqual([]);
        if (rerun === 'delta') {
          // Resumed from the cursors: what was committed is not read again.
          expect(r.eventsRead).toBeLessThan(total);
          expect(r.duplicates).toBe(0);
        }
        expect(await snapshot(s)).toEqual(await cleanSnapshot());
      });
    }
  });
}
