/** cowrie-report as a user runs it: output files, exit codes and one-line errors. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { buildFixture, HOSTILE } from './fixture.js';

const sqlite = dialectCases().find((d) => d.name === 'sqlite')!;

describe('cowrie-report command line', () => {
  let url: string;
  beforeAll(async () => {
    url = await sqlite.newUrl();
    await buildFixture(url, { sessions: 60 });
  }, 120_000);

  it('writes the HTML report to --out and the summary table to stdout, without colour when piped', async () => {
    const out = path.join(tempDir(), 'report.html');
    const html = await runCli('cowrie-report', ['summary', '--format', 'html', '--out', out, '--db', url]);
    expect(html).toMatchObject({ code: 0, stdout: '' });
    expect(fs.readFileSync(out, 'utf8')).toMatch(/^<!DOCTYPE html>/);
    const table = await runCli('cowrie-report', ['summary', '--limit', '3', '--db', url, '--since', '2000-01-01']);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('Totals');
    expect(table.stdout).not.toContain('\x1b');
    const csv = await runCli('cowrie-report', ['credentials', '--format', 'csv', '--since', '2000-01-01', '--limit', '1000', '--db', url]);
    expect(csv.stdout).toContain(`"'${HOSTILE.password.replaceAll('"', '""')}"`);
  });

  it.each([
    [['nope'], /unknown view "nope": expected one of summary/],
    [['summary', '--format', 'csv'], /summary --format csv: CSV holds one view per file/],
    [['blocklist', '--format', 'html'], /blocklist --format "html": expected one of plain/],
    [['totals', '--since', 'last tuesday'], /--since "last tuesday": expected a duration like 7d/],
    [['totals', '--since', '2024-02-01', '--until', '2024-01-01'], /--since .* is after --until/],
    [['totals', '--limit', '-1'], /--limit must be a whole number/],
    [['blocklist', '--format', 'nft', '--set-name', 'bad name;'], /--set-name "bad name;"/],
    [['blocklist', '--max-age', 'forever'], /--max-age "forever"/],
  ])('refuses %j with one line and exit 2', async (args, message) => {
    const r = await runCli('cowrie-report', [...args, '--db', url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('an unusable database is exit 2; an unwritable --out is exit 1; neither prints a stack', async () => {
    const notDb = path.join(tempDir(), 'x.sqlite');
    fs.writeFileSync(notDb, 'not a database at all, just text'.repeat(100));
    const bad = await runCli('cowrie-report', ['totals', '--db', `sqlite:${notDb}`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const out = await runCli('cowrie-report', ['totals', '--out', path.join(tempDir(), 'missing', 'dir', 'r.txt'), '--db', url]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^cowrie-report: error: cannot write .*r\.txt/);
  });
});
