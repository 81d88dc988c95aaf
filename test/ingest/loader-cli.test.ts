/**
 * What the loader prints (issue 8 items 9, 15, 28): the summary line counts files read, names
 * what is missing, tells new dead letters from known ones and says what was held back; a text
 * log or a folder without JSON logs is one clear line and exit 1; file names are escaped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { openStore } from '../../src/store/store.js';
import { count, ev, writeLines } from './load-helpers.js';

const root = tempDir('cowrie-loader-cli-');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = () => {
  const p = path.join(root, `c${n++}`);
  fs.mkdirSync(p, { recursive: true });
  return p;
};
const stderrLines = (s: string) => s.split('\n').filter((l) => l !== '');

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] cowrie-loader output`, () => {
    it('the summary line: files read, missing named, dead letters new vs known, held back; the status file agrees', async () => {
      const base = dir();
      writeLines(path.join(base, 'cowrie.json.1'), [ev('cowrie.session.connect', 'ab12cd34ef56', 1), 'not json', ev('cowrie.login.failed', 'ab12cd34ef56', 2, { username: 'enable\u0000' })]);
      fs.writeFileSync(path.join(base, 'cowrie.json'), `${ev('cowrie.command.input', 'ab12cd34ef56', 3, { input: 'id' })}\n{"eventid":"cowrie.comm`);
      const missing = path.join(base, 'gone.json');
      const url = await d.newUrl();
      const statusDir = path.join(dir(), 'status');
      const r = await runCli('cowrie-loader', ['delta', base, missing, '--db', url, '--status-dir', statusDir]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toContain(`files=2 (found 2, unchanged 0, missing 1 [${missing}], failed 0)`);
      expect(r.stdout).toContain('events_read=4 inserted=3');
      expect(r.stdout).toContain('dead_lettered=1 (new 1, already known 0)');
      expect(r.stdout).toContain('held_back=1 (incomplete_line 1, live_file 0)');
      expect(r.stdout).toContain('cleaned=1');
      const status = JSON.parse(fs.readFileSync(path.join(statusDir, 'ingest.json'), 'utf8')) as Record<string, unknown>;
      expect(status).toMatchObject({
        state: 'failed', files_read: 2, events_read: 4, inserted: 3, dead_lettered: 1, dead_lettered_new: 1, cleaned: 1,
        held_back: { total: 1, incomplete_line: 1, live_file: 0 }, missing: [missing],
      });
      // A bulk re-load: the same dead letter is known, nothing new; every file is read again.
      const again = await runCli('cowrie-loader', ['bulk', base, '--db', url]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('files=2 (found 2, unchanged 0, missing 0, failed 0)');
      expect(again.stdout).toContain('dead_lettered=1 (new 0, already known 1)');
      expect(again.stdout).toContain('inserted=0');
    });

    it("Cowrie's text log is refused in one line, exit 1, nothing dead-lettered", async () => {
      const base = dir();
      const log = path.join(base, 'cowrie.log');
      fs.writeFileSync(log, [
        '2021-07-19T00:04:26.774752Z [cowrie.telnet.factory.HoneyPotTelnetFactory] New connection: 27.213.102.95:40579 (192.168.126.20:2223) [session: 3077d7bc231f]',
        '2021-07-19T04:20:01.652509Z [cowrie.ssh.factory.CowrieSSHFactory] New connection: 116.30.7.45:36673 (192.168.126.20:2222) [session: 18b3361c21c2]',
      ].join('\n') + '\n');
      const url = await d.newUrl();
      const r = await runCli('cowrie-loader', ['bulk', log, '--db', url, '-q']);
      expect(r.code).toBe(1);
      expect(stderrLines(r.stderr)).toEqual([`cowrie-loader: error: ${log} is Cowrie's text log, not its JSON log: load cowrie.json ([output_jsonlog]) instead`]);
      // A gzipped rotated text log too.
      fs.writeFileSync(`${log}.1.gz`, gzipSync(fs.readFileSync(log)));
      const gz = await runCli('cowrie-loader', ['bulk', `${log}.1.gz`, '--db', url, '-q']);
      expect([gz.code, stderrLines(gz.stderr).length]).toEqual([1, 1]);
      expect(gz.stderr).toContain("text log");
      const store = await openStore(url);
      try {
        expect(await count(store, 'dead_letter_events')).toBe(0);
        expect(await count(store, 'raw_events')).toBe(0);
      } finally {
        await store.close();
      }
    });

    it('a folder without JSON logs is one line, exit 1', async () => {
      const base = dir();
      fs.writeFileSync(path.join(base, 'cowrie.log'), '2021-07-19T00:04:26.774752Z [x] y\n');
      const url = await d.newUrl();
      const r = await runCli('cowrie-loader', ['bulk', base, '--db', url]);
      expect(r.code).toBe(1);
      expect(stderrLines(r.stderr)).toEqual([`cowrie-loader: error: nothing to load: no Cowrie JSON logs (**/*.json*, **/cowrie*.gz, **/cowrie*.bz2) in ${base}`]);
    });

    it('file names with control characters are printed escaped', async () => {
      const base = dir();
      const evil = path.join(base, 'cowrie.json.\u001b]0;owned\u0007.gz');
      fs.writeFileSync(evil, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]));
      writeLines(path.join(base, 'cowrie.json'), [ev('cowrie.session.connect', 'ab12cd34ef56', 1)]);
      const url = await d.newUrl();
      const r = await runCli('cowrie-loader', ['bulk', base, '--db', url]);
      expect(r.code).toBe(1);
      expect(r.stderr).not.toMatch(/[\u0007\u001b]/);
      expect(r.stderr).toContain('cowrie.json.\\x1b]0;owned\\x07.gz');
      expect(r.stdout).toContain('files=1 (found 2, unchanged 0, missing 0, failed 1)');
    });
  });
}
