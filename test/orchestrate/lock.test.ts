/**
 * Never two orchestrated runs at once on one database: the second exits 75 naming the first
 * (host, pid, start), --wait waits for it, and a kill -9'd run leaves no lock behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { dialectCases } from '../helpers/dialects.js';
import { waitFor, type World } from '../helpers/world.js';
import { sensorsWorld, type SensorsWorld } from './helpers.js';

const SENSORS = `
[[sensor]]
name = "alpha"
logpath = "logs/honeypot-01"

[[sensor]]
name = "beta"
logpath = "logs/honeypot-02"
`;

/** A run we can watch and kill: stderr collected as it comes. */
function start(s: SensorsWorld, args: string[]): { child: ChildProcess; stderr: () => string; stdout: () => string; done: Promise<number> } {
  const child = spawn(path.join(ROOT, 'bin', 'cowrie-orchestrate'), ['--config', s.config, ...args], { cwd: s.w.dir, env: { ...process.env, ...s.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.on('data', (d) => (out += d));
  const done = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  return { child, stderr: () => err, stdout: () => out, done };
}

const sessions = async (s: SensorsWorld) => Number((await (await s.w.open()).db.query<{ n: number }>('SELECT count(*) AS n FROM session_summaries'))[0].n);

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] cowrie-orchestrate run lock`, () => {
    let w: World | null = null;
    afterEach(async () => {
      await w?.close();
      w = null;
    });

    it('a held lock: exit 75 with one line naming host, pid and start, nothing loaded; --wait runs once it is free', async () => {
      const s = await sensorsWorld({ url: await d.newUrl(), sensors: SENSORS });
      w = s.w;
      const store = await s.w.open();
      const attempt = await store.db.tryRunLock('orchestrate', { host: 'other-host', pid: 4242, startedAt: '2026-01-02T03:04:05Z' });
      if (!('held' in attempt)) throw new Error('the lock should be free');
      const r = await s.orchestrate(['--skip-enrich']);
      expect(r.code).toBe(75);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^cowrie-orchestrate: error: another cowrie-orchestrate is running on .+ \(host other-host, pid 4242, started at \d{4}-\d\d-\d\dT[\d:.]+Z\); not starting a second one/);
      expect(await sessions(s)).toBe(0);

      const waiting = start(s, ['--skip-enrich', '--wait']);
      await waitFor(() => waiting.stderr().includes('waiting for it to finish'), 30_000, 'the --wait run to wait');
      expect(await sessions(s)).toBe(0);
      await attempt.held.release();
      expect(await waiting.done).toBe(0);
      expect(await sessions(s)).toBeGreaterThan(0);
    });

    it('two runs started together: one runs, the other exits 75', async () => {
      // GreyNoise answers slowly, so each run holds the lock for seconds.
      const s = await sensorsWorld({ url: await d.newUrl(), sensors: SENSORS, world: { greynoise: { latencyMs: 4000 } } });
      w = s.w;
      const [a, b] = await Promise.all([s.orchestrate([]), s.orchestrate([])]);
      expect([a.code, b.code].sort()).toEqual([0, 75]);
      const loser = a.code === 75 ? a : b;
      expect(loser.stderr).toMatch(new RegExp(`another cowrie-orchestrate is running on .+ \\(host [^,]+, pid \\d+, started at `));
    });

    it('two runs started together with --wait: both run, one after the other', async () => {
      const s = await sensorsWorld({ url: await d.newUrl(), sensors: SENSORS, world: { greynoise: { latencyMs: 4000 } } });
      w = s.w;
      const [c, e] = await Promise.all([s.orchestrate(['--wait', '-v']), s.orchestrate(['--wait', '-v'])]);
      expect([c.code, e.code], c.stderr + e.stderr).toEqual([0, 0]);
      expect([c.stderr, e.stderr].filter((x) => x.includes('waiting for it to finish'))).toHaveLength(1);
    });

    it('SIGINT: exit 130, the table and orchestrate.json say aborted, the loads are kept, and the lock is free', async () => {
      const s = await sensorsWorld({ url: await d.newUrl(), sensors: SENSORS, world: { greynoise: { latencyMs: 20_000 } } });
      w = s.w;
      const run = start(s, ['-v']);
      // The refresh is under way (its status files exist) once both sensors are loaded.
      await waitFor(() => fs.existsSync(path.join(s.w.statusDir, 'status.json')), 60_000, 'the refresh to start');
      run.child.kill('SIGINT');
      expect(await run.done).toBe(130);
      expect(run.stdout()).toMatch(/^alpha .* ok$/m);
      expect(run.stdout()).toMatch(/^refresh: failed: interrupted/m);
      expect(run.stderr().trim().split('\n').at(-1)).toMatch(/^cowrie-orchestrate: error: interrupted: committed work is kept/);
      const report = JSON.parse(fs.readFileSync(path.join(s.w.statusDir, 'orchestrate.json'), 'utf8')) as { state: string; exit_code: number; sensors: Array<{ outcome: string }> };
      expect(report).toMatchObject({ state: 'aborted', exit_code: 130 });
      expect(report.sensors.map((x) => x.outcome)).toEqual(['ok', 'ok']);
      expect(await sessions(s)).toBeGreaterThan(0);
      const next = await s.orchestrate(['--skip-enrich']);
      expect(next.code, next.stderr).toBe(0);
    });

    it('a kill -9\'d run leaves no lock behind', async () => {
      const s = await sensorsWorld({ url: await d.newUrl(), sensors: SENSORS, world: { greynoise: { latencyMs: 60_000 } } });
      w = s.w;
      const run = start(s, []);
      // orchestrate.json is first written once the run holds the lock.
      await waitFor(() => fs.existsSync(path.join(s.w.statusDir, 'orchestrate.json')), 60_000, 'the run to take the lock');
      run.child.kill('SIGKILL');
      await run.done;
      const next = await s.orchestrate(['--skip-enrich']);
      expect(next.code, next.stderr).toBe(0);
    });
  });
}
