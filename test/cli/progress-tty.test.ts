/**
 * The progress display as a user sees it: on a real pseudo-terminal (util-linux `script`), and
 * through a pipe as cron would capture it.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateLogs } from '../../src/sim/log-generator.js';
import { ROOT } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { buildWorld, type World } from '../helpers/world.js';

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** Run a bin/ command with its stdout and stderr on a pseudo-terminal; returns all it drew. */
function runInPty(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number; out: string }> {
  // A wide terminal, so frames are not cut to the width the test machine happens to report.
  const line = `stty cols 220; ${[path.join(ROOT, 'bin', cmd), ...args].map(quote).join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', line, '/dev/null'], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 55_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
  });
}

/** The frames drawn with carriage returns, in order, without the erase-line sequence. */
const frames = (out: string) => out.split(/\r|\n/).map((f) => f.replace(/\x1b\[K/g, '').trim()).filter(Boolean);

// Leftovers of template-based bars: raw placeholders, NaN/Infinity ETAs.
const BROKEN = /\{[a-z_]+\}|NaN|Infinity|ETA NF|ETA LL|undefined/;

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] progress on a terminal and in a pipe`, () => {
    let w: World | null = null;
    afterEach(async () => {
      await w?.close();
      w = null;
    });

    it('refresh on a terminal shows every step with real figures: sessions, files, passes 1, 2 and 3', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 300, ips: 120, maxmind: 'city' });
      // A first run enriches the IPs; then every session lacks a snapshot again, and
      // --stale-days 0 makes every IP due, so the second run has work in every step.
      expect((await w.refresh(['--ips', 'all'])).code).toBe(0);
      const store = await w.open();
      await store.db.run('UPDATE session_summaries SET enrichment_at = NULL');
      const r = await runInPty('cowrie-enrich', ['refresh', ...w.flags(), '--sessions', 'all', '--files', 'all', '--ips', 'all', '--stale-days', '0', '--commit-interval', '20'], { env: w.env(), cwd: w.dir });
      expect(r.code, r.out).toBe(0);
      const f = frames(r.out);
      for (const step of ['refresh sessions [', 'refresh files (VirusTotal) [', 'refresh pass 1/3 MaxMind [', 'refresh pass 2/3 Cymru [', 'refresh pass 3/3 merge + GreyNoise [']) {
        expect(f.some((x) => x.startsWith(step)), `${step}\n${f.join('\n')}`).toBe(true);
      }
      expect(f.some((x) => /^refresh pass 3\/3 merge \+ GreyNoise \[#+-*\] +\d+% [\d,]+\/[\d,]+ IPs \| \d+ s, ETA /.test(x))).toBe(true);
      expect(r.out).not.toMatch(BROKEN);
      expect(r.out).toMatch(/Refresh complete: /);
    });

    it('refresh in a pipe logs [INFO] progress lines at the configured interval, with no control characters', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 200, ips: 80, maxmind: 'city' });
      // GreyNoise at 40 requests/s makes pass 3 last about two seconds.
      const r = await w.refresh(['--ips', 'all', '--greynoise-rate', '40'], { env: { COWRIE_PROGRESS_INTERVAL: '0.2' } });
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('[INFO] progress: refresh'));
      expect(lines.length, r.stderr).toBeGreaterThanOrEqual(2);
      expect(lines.some((l) => /^\[INFO\] progress: refresh pass 3\/3 merge \+ GreyNoise [\d,]+\/[\d,]+ IPs \(\d+%\), \d+ s, ETA /.test(l)), lines.join('\n')).toBe(true);
      expect(r.stderr + r.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f]/);
      expect(r.stderr).not.toMatch(BROKEN);
    });
  });
}

describe('loader progress on a terminal', () => {
  it('shows the bytes and files read, then clears the bar before the summary', async () => {
    const logs = tempDir();
    await generateLogs({ outDir: logs, sessions: 3000, ips: 300, sensors: 1, days: 3, seed: 5 });
    const url = `sqlite:${path.join(tempDir(), 'c.sqlite')}`;
    const r = await runInPty('cowrie-loader', ['bulk', logs, '--db', url, '--batch-size', '500'], { env: { COWRIE_CONFIG: '' } });
    expect(r.code, r.out).toBe(0);
    const f = frames(r.out);
    expect(f.some((x) => /^ingest files \[[#-]{20}\] +\d+% [\d.]+\/[\d.]+ MB \| file \d+\/3, [\d,]+ events, [\d,]+ events\/s \| \d+ s, ETA /.test(x)), f.join('\n')).toBe(true);
    expect(f.at(-1)).toMatch(/^files=3 /);
    expect(r.out).not.toMatch(BROKEN);
  });
});
