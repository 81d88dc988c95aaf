/**
 * What the commands print when something is wrong: one line of ours with the command's prefix,
 * the right exit code, no library text, no stack trace, no password, no empty database created
 * by a typo. Run through bin/ as a user would (needs `npx tsc -p tsconfig.json` first).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/store.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';

/** Exactly one stderr line, starting with the command's prefix, no stack trace. */
function expectOneLine(r: CliResult, cmd: string, code: number): string {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^${cmd}: error: `));
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  return lines[0];
}

const ENV = { COWRIE_CONFIG: '', COWRIE_DB_URL: '' };

async function existingDb(url: string): Promise<void> {
  await (await openStore(url)).close();
}

/** A URL to a database that does not exist: a missing SQLite file, or a database name the server lacks. */
function missingDbUrl(d: { name: string }, existing: string): { url: string; file?: string } {
  if (d.name === 'sqlite') {
    const file = path.join(tempDir(), 'typo.sqlite');
    return { url: `sqlite:${file}`, file };
  }
  const u = new URL(existing);
  u.pathname = '/cowrie_no_such_database';
  return { url: u.toString() };
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] a database that does not exist is reported, not created`, () => {
    for (const [cmd, args] of [
      ['cowrie-db', ['info']],
      ['cowrie-db', ['check']],
      ['cowrie-enrich', ['refresh', '--ips', 'all', '--offline']],
    ] as const) {
      it(`${cmd} ${args[0]}: exit 2, says it does not exist, creates nothing`, async () => {
        const existing = await d.newUrl();
        const { url, file } = missingDbUrl(d, existing);
        const r = await runCli(cmd, [...args, '--db', url], { env: { ...ENV, XDG_CACHE_HOME: tempDir() } });
        const line = expectOneLine(r, cmd, 2);
        expect(line).toMatch(/does not exist/);
        if (file) expect(fs.existsSync(file)).toBe(false);
        const password = new URL(existing.startsWith('postgres') ? existing : 'x://h').password;
        if (password) expect(r.stderr).not.toContain(password);
      });
    }

    it('migrate creates it', async () => {
      const existing = await d.newUrl();
      if (d.name === 'sqlite') {
        const { url, file } = missingDbUrl(d, existing);
        const r = await runCli('cowrie-db', ['migrate', '--db', url], { env: ENV });
        expect(r.code, r.stderr).toBe(0);
        expect(fs.existsSync(file!)).toBe(true);
      } else {
        const r = await runCli('cowrie-db', ['migrate', '--db', existing], { env: ENV });
        expect(r.code, r.stderr).toBe(0);
      }
    });

    it('every command names its database (redacted) in its first INFO line', async () => {
      const url = await d.newUrl();
      await existingDb(url);
      const display = url.startsWith('sqlite:') ? url : url.replace(/:[^:@/]+@/, ':***@');
      const logs = tempDir();
      // One event: a folder with nothing to load is an error of its own (exit 1).
      fs.writeFileSync(path.join(logs, 'cowrie.json'), `${JSON.stringify({ eventid: 'cowrie.session.connect', timestamp: '2024-01-05T17:09:34.399033Z', session: 'a1b2c3d4e5f6', src_ip: '203.0.113.9', sensor: 's1' })}\n`);
      const loader = await runCli('cowrie-loader', ['bulk', logs, '--db', url, '-v'], { env: ENV });
      expect(loader.code, loader.stderr).toBe(0);
      const enrich = await runCli('cowrie-enrich', ['refresh', '--ips', 'all', '--offline', '--db', url, '-v'], { env: { ...ENV, XDG_CACHE_HOME: tempDir() } });
      expect(enrich.code, enrich.stderr).toBe(0);
      for (const r of [loader, enrich]) {
        const first = r.stderr.split('\n').find((l) => l.startsWith('[INFO]'));
        expect(first).toBe(`[INFO] Using database ${display}`);
        if (url.startsWith('postgres')) expect(r.stderr).not.toContain(new URL(url).password);
      }
    });
  });
}

describe('passwords never leave the process', () => {
  const pg = dialectCases().find((c) => c.name === 'postgres')!;

  it.skipIf(pg.skip)('?password= in the URL: cowrie-db info connects and prints it as ***', async () => {
    const u = new URL(await pg.newUrl());
    const password = u.password;
    u.password = '';
    u.searchParams.set('password', password);
    const r = await runCli('cowrie-db', ['info', '--db', u.toString()], { env: ENV });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/password=\*\*\*/);
    expect(r.stdout + r.stderr).not.toContain(password);
  });

  it('an @ inside the password hides all of it', async () => {
    const r = await runCli('cowrie-db', ['info', '--db', 'postgresql://u:s3cr@tpart@127.0.0.1:1/x'], { env: ENV });
    expectOneLine(r, 'cowrie-db', 2);
    expect(r.stderr).not.toMatch(/s3cr|tpart/);
    expect(r.stderr).toContain('postgresql://u:***@127.0.0.1:1/x');
  });

  for (const scheme of ['postgresql', 'postgres']) {
    it(`${scheme}:/ (one slash) is a malformed URL, not a SQLite file name`, async () => {
      const cwd = tempDir();
      const r = await runCli('cowrie-db', ['info', '--db', `${scheme}:/u:hunter2@db.example/cowrie`], { env: ENV, cwd });
      const line = expectOneLine(r, 'cowrie-db', 2);
      expect(line).toMatch(/malformed PostgreSQL URL/);
      expect(r.stderr).not.toContain('hunter2');
      expect(fs.readdirSync(cwd)).toEqual([]);
    });
  }

  it('credentials in --greynoise-url are refused without being echoed', async () => {
    const url = await dialectCases()[0].newUrl();
    await existingDb(url);
    const r = await runCli('cowrie-enrich', ['refresh', '--ips', 'all', '--db', url, '--greynoise-url', 'https://user:gnsecret@api.example/'], { env: ENV });
    const line = expectOneLine(r, 'cowrie-enrich', 2);
    expect(line).toMatch(/--greynoise-url must be an http/);
    expect(r.stderr).not.toContain('gnsecret');
  });
});

describe('our messages, with the command prefix, exit 2', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['cowrie-enrich', ['refresh', '--ips', 'abc'], /^cowrie-enrich: error: --ips must be a whole number ≥ 0 or "all", got "abc"$/],
    ['cowrie-enrich', ['refresh', '--ips', '99999999999999999999'], /--ips must be a whole number ≥ 0 or "all"/],
    ['cowrie-enrich', ['refresh', '--files', '9007199254740993'], /--files must be a whole number ≥ 0 or "all"/],
    ['cowrie-enrich', ['refresh', '--ips', 'all', '--commit-interval', 'abc'], /^cowrie-enrich: error: --commit-interval must be a whole number from 1 to 100000, got "abc"$/],
    ['cowrie-enrich', ['refresh', '--ips', 'all', '--cymru-port', '99999'], /--cymru-port must be a whole number from 1 to 65535/],
    ['cowrie-enrich', ['refresh', '--bogus'], /^cowrie-enrich: error: unknown option '--bogus'$/],
    ['cowrie-loader', ['bulk'], /^cowrie-loader: error: missing required argument 'paths'$/],
    ['cowrie-db', ['frobnicate'], /^cowrie-db: error: unknown command 'frobnicate'$/],
    ['cowrie-sim', ['cymru', '--port', '99999'], /^cowrie-sim: error: option '--port <port>' argument '99999' is invalid\. expected a whole number from 0 to 65535$/],
    ['cowrie-sim', ['greynoise', '--port', '70000'], /expected a whole number from 0 to 65535/],
  ];
  for (const [cmd, args, want] of cases) {
    it(`${cmd} ${args.join(' ')}`, async () => {
      const r = await runCli(cmd, args, { env: ENV, timeoutMs: 20_000 });
      const line = expectOneLine(r, cmd, 2);
      expect(line).toMatch(want);
      expect(line).not.toMatch(/Invalid input|received NaN/);
    });
  }
});

describe('an unusable --status-dir is one line and exit 2, promptly', () => {
  for (const dir of ['/proc/cowrie-x/status', '/proc/cowrie-x']) {
    it(`cowrie-enrich refresh --status-dir ${dir}`, async () => {
      const url = await dialectCases()[0].newUrl();
      await existingDb(url);
      // Node's recursive mkdir spins forever under /proc: the old code was killed by this timeout.
      const r = await runCli('cowrie-enrich', ['refresh', '--ips', 'all', '--offline', '--db', url, '--status-dir', dir], { env: ENV, timeoutMs: 20_000 });
      const line = expectOneLine(r, 'cowrie-enrich', 2);
      expect(line).toContain(`cannot use status folder ${dir}`);
    });
  }

  it('cowrie-loader bulk --status-dir /proc/cowrie-x', async () => {
    const url = await dialectCases()[0].newUrl();
    const r = await runCli('cowrie-loader', ['bulk', tempDir(), '--db', url, '--status-dir', '/proc/cowrie-x'], { env: ENV, timeoutMs: 20_000 });
    expectOneLine(r, 'cowrie-loader', 2);
  });
});
