/**
 * contrib/: the systemd units parse (systemd-analyze verify when present, warnings included),
 * and every command line they and the cron script run names one of our commands with flags it
 * accepts (checked against its --help), so a renamed flag cannot leave a unit behind.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/dialects.js';

const SYSTEMD = path.join(ROOT, 'contrib', 'systemd');
const UNITS = fs.readdirSync(SYSTEMD).filter((f) => /\.(service|timer)$/.test(f));
const CRON = path.join(ROOT, 'contrib', 'cron', 'cowrie-orchestrate.sh');
const OURS = ['cowrie-orchestrate', 'cowrie-enrich', 'cowrie-loader', 'cowrie-db'];
const hasAnalyze = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' }).stdout.trim() !== '';

/** Our command lines in a file: ExecStart= of units, plain lines of the script (comments left out). */
function commandLines(file: string): string[][] {
  const out: string[][] = [];
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim().replace(/^ExecStart=/, '');
    if (line.startsWith('#')) continue;
    const words = line.split(/\s+/);
    const at = words.findIndex((w) => OURS.includes(w));
    if (at >= 0) out.push(words.slice(at).filter((w) => !w.startsWith('>') && !w.startsWith('2>')));
  }
  return out;
}

describe('contrib: systemd units, cron script, logrotate', () => {
  it.skipIf(!hasAnalyze)('systemd-analyze verify accepts every unit without a warning', () => {
    // A template is verified as an instance of itself.
    const dir = tempDir('cowrie-units-');
    const files = UNITS.map((u) => {
      const name = u.replace('@.', '@1.');
      fs.copyFileSync(path.join(SYSTEMD, u), path.join(dir, name));
      return path.join(dir, name);
    });
    const r = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the nightly service and timer, the refresh worker template, the cron script and logrotate snippet exist', () => {
    expect(UNITS).toEqual(expect.arrayContaining(['cowrie-orchestrate.service', 'cowrie-orchestrate.timer', 'cowrie-refresh@.service']));
    expect(spawnSync('bash', ['-n', CRON]).status).toBe(0);
    expect(fs.statSync(CRON).mode & 0o111).not.toBe(0);
    expect(fs.readFileSync(path.join(ROOT, 'contrib', 'logrotate', 'cowrie-enrich'), 'utf8')).toMatch(/^\/var\/log\/cowrie-enrich\/\*\.log \{$/m);
  });

  it('every command they run is ours, with flags its --help lists', async () => {
    const lines = [...UNITS.map((u) => path.join(SYSTEMD, u)), CRON].flatMap(commandLines);
    expect(lines.map((l) => l[0])).toEqual(expect.arrayContaining(['cowrie-orchestrate', 'cowrie-enrich']));
    for (const [cmd, ...args] of lines) {
      const first = args.findIndex((a) => a.startsWith('-'));
      const sub = first < 0 ? args : args.slice(0, first);
      const help = await runCli(cmd, [...sub, '--help']);
      expect(help.code, `${cmd} ${sub.join(' ')} --help`).toBe(0);
      for (const flag of args.filter((a) => a.startsWith('--'))) expect(help.stdout, `${cmd} ${flag}`).toContain(flag.split('=')[0]);
    }
  });
});
