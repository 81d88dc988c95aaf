/**
 * Issue 8, "Output an operator can trust": the loader's counts and stored rows say what happened
 * to every line — last lines without a newline, cleaned text, downloads, old Cowrie fields, links
 * out of the log folder — on both databases.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readJson } from '../../src/store/schema.js';
import { openStore, type Store } from '../../src/store/store.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { count, ev, load, snapshot, writeLines, freshStores } from './load-helpers.js';

const root = tempDir('cowrie-load-trust-');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = () => {
  const p = path.join(root, `c${n++}`);
  fs.mkdirSync(p, { recursive: true });
  return p;
};

let k = 0;
const cmd = () => ev('cowrie.command.input', 'ab12cd34ef56', k, { input: `echo ${k++}` });
/** Ten minutes ago: longer than LIVE_FILE_QUIET_MS, so a live-named file counts as finished. */
const makeQuiet = (file: string) => {
  const t = new Date(Date.now() - 10 * 60 * 1000);
  fs.utimesSync(file, t, t);
};
const inputs = async (s: Store) =>
  (await s.db.query<{ payload: unknown }>('SELECT payload FROM raw_events')).map((r) => (readJson(r.payload) as { input?: string }).input).sort();
const reasons = async (s: Store) =>
  (await s.db.query<{ reason: string }>('SELECT reason FROM dead_letter_events ORDER BY reason')).map((r) => r.reason);

const SHA_A = 'a1'.repeat(32);
const SHA_B = 'b2'.repeat(32);

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] last line without a newline (item 1)`, () => {
    const fresh = freshStores(d);

    it('a rotated, compressed or bulk-loaded file has its unterminated last line loaded', async () => {
      const base = dir();
      const [a, b, c, e, f, g] = [cmd(), cmd(), cmd(), cmd(), cmd(), cmd()];
      fs.writeFileSync(path.join(base, 'cowrie.json.2024-01-01'), `${a}\n${b}`);
      fs.writeFileSync(path.join(base, 'cowrie.json.3.gz'), gzipSync(`${c}\n${e}`));
      const live = path.join(base, 'cowrie.json');
      fs.writeFileSync(live, `${f}\n${g}`);
      const s = await fresh();
      const r = await load(s, [base], { mode: 'delta' });
      // Delta mode: the live file's complete last line waits until the file is quiet.
      expect([r.inserted, r.partialLines, r.heldBack.live_file, r.deadLettered]).toEqual([5, 1, 1, 0]);
      const bulk = await load(s, [live]);
      expect([bulk.inserted, bulk.partialLines]).toEqual([1, 0]);
      expect(await inputs(s)).toEqual([a, b, c, e, f, g].map((x) => (JSON.parse(x) as { input: string }).input).sort());
      // Nothing is read twice and nothing is missing after another delta run.
      const again = await load(s, [base], { mode: 'delta' });
      expect([again.inserted, again.deadLettered, again.partialLines]).toEqual([0, 0, 0]);
    });

    it('delta: a live file quiet for longer than the quiet period has its last line loaded; what is appended later follows', async () => {
      const live = path.join(dir(), 'cowrie.json');
      const [a, b, c] = [cmd(), cmd(), cmd()];
      fs.writeFileSync(live, `${a}\n${b}`);
      const s = await fresh();
      const r1 = await load(s, [live], { mode: 'delta' });
      expect([r1.inserted, r1.heldBack.live_file]).toEqual([1, 1]);
      makeQuiet(live);
      const r2 = await load(s, [live], { mode: 'delta' });
      expect([r2.inserted, r2.partialLines]).toEqual([1, 0]);
      fs.appendFileSync(live, `\n${c}\n`);
      const r3 = await load(s, [live], { mode: 'delta' });
      expect([r3.inserted, r3.duplicates, r3.deadLettered]).toEqual([1, 0, 0]);
      expect((await inputs(s)).length).toBe(3);
    });

    it('a fragment is held back while the file may grow, and becomes a truncated_line dead letter once it is finished', async () => {
      const base = dir();
      const live = path.join(base, 'cowrie.json');
      const a = cmd();
      fs.writeFileSync(live, `${a}\n{"eventid":"cowrie.command.in`);
      const s = await fresh();
      const r1 = await load(s, [live], { mode: 'delta' });
      expect([r1.inserted, r1.heldBack.incomplete_line, r1.deadLettered]).toEqual([1, 1, 0]);
      makeQuiet(live);
      const r2 = await load(s, [live], { mode: 'delta' });
      expect([r2.deadLettered, r2.deadLetteredNew, r2.partialLines]).toEqual([1, 1, 0]);
      expect(await reasons(s)).toEqual(['truncated_line']);
      // A rotated file with a torn last line: dead letter at once, in bulk and delta mode alike.
      const rotated = path.join(base, 'cowrie.json.1');
      fs.writeFileSync(rotated, `${cmd()}\n{"eventid":"cowrie.sess`);
      const r3 = await load(s, [rotated]);
      expect([r3.inserted, r3.deadLettered, r3.partialLines]).toEqual([1, 1, 0]);
      expect(await reasons(s)).toEqual(['truncated_line', 'truncated_line']);
    });
  });

  describe.skipIf(d.skip)(`[${d.name}] stored rows (items 2, 3, 4, 5, 28)`, () => {
    const fresh = freshStores(d);

    it('a cleaned NUL is named in the stored payload and counted', async () => {
      const f = writeLines(path.join(dir(), 'cowrie.json'), [
        ev('cowrie.login.failed', 'ab12cd34ef56', 1, { username: 'enable\u0000', password: 'x' }),
        ev('cowrie.login.failed', 'ab12cd34ef56', 2, { username: 'enable', password: 'x' }),
      ]);
      const s = await fresh();
      const r = await load(s, [f]);
      expect([r.inserted, r.cleaned]).toEqual([2, 1]);
      const rows = (await s.db.query<{ payload: unknown }>("SELECT payload FROM raw_events WHERE event_type = 'cowrie.login.failed'"))
        .map((x) => readJson(x.payload) as { username: string; _cleaned?: string[] });
      expect(rows.map((x) => [x.username, x._cleaned ?? null]).sort()).toEqual([['enable', null], ['enable', ['username']]]);
    });

    it('file_downloads counts distinct files whatever the order and however often loaded; files.filename comes from the URL', async () => {
      const base = dir();
      const sid = 'c0ffee00beef';
      const dl = (ts: number, sha: string, url: string) =>
        ev('cowrie.session.file_download', sid, ts, { url, shasum: sha, outfile: `var/lib/cowrie/downloads/${sha}`, destfile: '' });
      // Cowrie 1.x logs each wget twice; a second file; an upload (not a download).
      const one = writeLines(path.join(base, 'cowrie.json.2024-01-01'), [
        ev('cowrie.session.connect', sid, 0), dl(5, SHA_A, 'http://198.51.100.9/bins/mirai.arm7'), dl(5.5, SHA_A, 'http://198.51.100.9/bins/mirai.arm7'),
      ]);
      const two = writeLines(path.join(base, 'cowrie.json'), [
        dl(9, SHA_A, 'http://198.51.100.9/bins/mirai.arm7'), dl(10, SHA_B, 'http://198.51.100.9/x86'),
        ev('cowrie.session.file_upload', sid, 11, { filename: '/root/up.sh', shasum: 'c3'.repeat(32) }),
      ]);
      const snaps = [];
      for (const order of [[one, two], [two, one]]) {
        const s = await fresh();
        for (const f of order) await load(s, [f]);
        await load(s, [two, one]);
        const [row] = await s.db.query<{ file_downloads: number }>('SELECT file_downloads FROM session_summaries');
        expect(Number(row.file_downloads)).toBe(2);
        const files = await s.db.query<{ shasum: string; filename: string }>('SELECT shasum, filename FROM files ORDER BY shasum');
        expect(files.map((x) => x.filename)).toEqual(['mirai.arm7', 'x86', 'up.sh']);
        snaps.push(await snapshot(s));
      }
      expect(snaps[1]).toEqual(snaps[0]);
    });

    it('migration 2 turns an older database\'s event counts into distinct downloaded files', async () => {
      const sid = 'c0ffee00beef';
      const f = writeLines(path.join(dir(), 'cowrie.json.1'), [
        ev('cowrie.session.file_download', sid, 1, { url: 'http://x/a', shasum: SHA_A }),
        ev('cowrie.session.file_download', sid, 2, { url: 'http://x/a', shasum: SHA_A }),
        ev('cowrie.session.connect', 'f00dfeed0001', 3),
      ]);
      const url = await d.newUrl();
      let s = await openStore(url);
      await load(s, [f]);
      // What version 1 left behind: no flag, file_downloads counted events.
      await s.db.run('ALTER TABLE files DROP COLUMN downloaded');
      // …and none of the later migrations' tables.
      for (const t of ['session_credentials', 'session_commands', 'first_seen_values']) await s.db.run(`DROP TABLE ${t}`);
      await s.db.run('DROP INDEX session_summaries_first_event');
      await s.db.run('UPDATE session_summaries SET file_downloads = 2 WHERE session_id = ?', [sid]);
      await s.db.run("UPDATE schema_state SET value = '1' WHERE key = 'schema_version'");
      await s.close();
      s = await openStore(url);
      try {
        const rows = await s.db.query<{ session_id: string; file_downloads: number }>('SELECT session_id, file_downloads FROM session_summaries ORDER BY session_id');
        expect(rows.map((r) => [r.session_id, Number(r.file_downloads)])).toEqual([[sid, 1], ['f00dfeed0001', 0]]);
        // Later loads keep the count right.
        await load(s, [f]);
        const [again] = await s.db.query<{ file_downloads: number }>('SELECT file_downloads FROM session_summaries WHERE session_id = ?', [sid]);
        expect(Number(again.file_downloads)).toBe(1);
      } finally {
        await s.close();
      }
    });

    it("old Cowrie logs: protocol from `system`, b'…' client version unwrapped", async () => {
      const f = writeLines(path.join(dir(), 'cowrie.json.2017-07-03'), [
        ev('cowrie.session.connect', '577076dfb79e', 0, { system: 'cowrie.ssh.factory.CowrieSSHFactory', isError: 0 }),
        ev('cowrie.client.version', '577076dfb79e', 1, { version: "b'SSH-2.0-Go'", system: 'HoneyPotSSHTransport,523,203.0.113.7' }),
        ev('cowrie.session.connect', '3077d7bc231f', 2, { system: 'cowrie.telnet.transport.HoneyPotTelnetFactory' }),
        ev('cowrie.login.failed', '3077d7bc231f', 3, { username: 'enable', password: 'system', system: 'CowrieTelnetTransport,7,203.0.113.7' }),
      ]);
      const s = await fresh();
      await load(s, [f]);
      const rows = await s.db.query<{ session_id: string; protocol: string; client_version: string | null }>(
        'SELECT session_id, protocol, client_version FROM session_summaries ORDER BY session_id',
      );
      expect(rows).toEqual([
        { session_id: '3077d7bc231f', protocol: 'telnet', client_version: null },
        { session_id: '577076dfb79e', protocol: 'ssh', client_version: 'SSH-2.0-Go' },
      ]);
    });

    it('a __proto__ key is kept: two lines that differ only there are two rows', async () => {
      const a = '{"eventid":"cowrie.command.input","session":"ab12cd34ef56","timestamp":"2024-01-05T17:09:34.000001Z","input":"ls"}';
      const b = '{"eventid":"cowrie.command.input","session":"ab12cd34ef56","timestamp":"2024-01-05T17:09:34.000001Z","input":"ls","__proto__":{"x":1}}';
      const f = writeLines(path.join(dir(), 'cowrie.json'), [a, b]);
      const s = await fresh();
      const r = await load(s, [f]);
      expect([r.inserted, r.duplicates]).toEqual([2, 0]);
      const payloads = (await s.db.query<{ payload: unknown }>('SELECT payload FROM raw_events')).map((x) => readJson(x.payload) as Record<string, unknown>);
      expect(payloads.filter((p) => Object.prototype.hasOwnProperty.call(p, '__proto__'))).toHaveLength(1);
    });
  });

  describe.skipIf(d.skip)(`[${d.name}] no single line fails a batch (items 21, 22)`, () => {
    const fresh = freshStores(d);

    it('hostile lines are each one dead letter or one cleaned event; every good line loads', async () => {
      const good: string[] = [];
      for (let i = 0; i < 40; i++) good.push(ev('cowrie.command.input', `0123456789${String(i).padStart(2, '0')}`, i, { input: `uname -a # ${i}` }));
      const rnd = (len: number) => Array.from({ length: len }, (_, i) => String.fromCharCode(33 + ((i * 7919 + 13) % 90))).join('').replace(/["\\]/g, 'x');
      const base = { eventid: 'cowrie.session.file_download', timestamp: '2024-01-05T17:09:34.000001Z', session: 'ab12cd34ef56' };
      const deep = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
      // Lines that must become dead letters, with the reason each must get.
      const bad: Array<[string, string]> = [
        [`{"eventid":"cowrie.command.input","timestamp":"2024-01-05T17:09:34Z","d":${deep(3000)}}`, 'too_deep'],
        [JSON.stringify({ ...base, n: 1, session: rnd(4000) }), 'bad_session_id'],
        [JSON.stringify({ ...base, n: 2, shasum: rnd(4000) }), 'bad_shasum'],
        [JSON.stringify({ ...base, n: 3, session: '🦀'.repeat(10) }), 'bad_session_id'],
        [`{"eventid":"cowrie.command.input","timestamp":"2024-01-05T17:09:34Z","size":1e999}`, 'number_out_of_range'],
        [JSON.stringify({ ...base, n: 4, k: Array.from({ length: 60_000 }, (_, i) => i) }), 'too_many_values'],
        ['{"eventid":"cowrie.command.input","timestamp":"2024-01-05T17:09:34Z","input":"x\\ud800', 'invalid_json'],
      ];
      // Wrong types for every field the loader reads: must not fail; eventid/timestamp/session/shasum are dead letters.
      const FIELDS = ['eventid', 'timestamp', 'session', 'src_ip', 'sensor', 'username', 'password', 'input', 'url', 'shasum', 'filename',
        'destfile', 'outfile', 'version', 'hassh', 'protocol', 'system', 'duration', 'duration_ms', 'message'];
      const WRONG: unknown[] = [12345, -1e308, true, { a: [1, { b: 'c' }] }, ['x', 2], 'x'.repeat(70_000), '\u202e\u0000\ud83d'];
      const typed: string[] = [];
      let m = 100;
      for (const field of FIELDS) {
        for (const value of WRONG) typed.push(JSON.stringify({ eventid: 'cowrie.session.file_download', timestamp: '2024-01-05T17:09:34.000001Z', session: 'ab12cd34ef56', n: m++, [field]: value }));
      }
      // Valid but hostile: cleaned or kept as they are.
      const odd = [
        ev('cowrie.login.failed', 'ab12cd34ef56', 900, { username: 'enable\u0000', password: '\ud800' }),
        ev('cowrie.command.input', 'ab12cd34ef56', 901, { input: '\u202e\u0007\u001b[31m\uffff\u{10ffff}' }),
        ev('cowrie.command.input', 'ab12cd34ef56', 902, { input: 'y'.repeat(1_000_000) }),
        '{"eventid":"cowrie.command.input","timestamp":"2024-01-05T17:09:34Z","__proto__":{"session":"x"},"constructor":{"prototype":1}}',
      ];
      const lines = [...good.slice(0, 20), ...bad.map((x) => x[0]), ...typed, ...odd, ...good.slice(20)];
      const f = writeLines(path.join(dir(), 'cowrie.json'), lines);
      const s = await fresh();
      const r = await load(s, [f], { batchSize: 100_000 });
      expect(r.filesFailed).toEqual([]);
      expect(r.eventsRead).toBe(lines.length);
      // Every line is exactly one row: an event or a dead letter.
      expect(r.inserted + r.deadLettered).toBe(lines.length);
      expect(await count(s, 'raw_events') + await count(s, 'dead_letter_events')).toBe(lines.length);
      for (const g of good) {
        const id = (JSON.parse(g) as { session: string }).session;
        expect(await count(s, 'raw_events', `WHERE session_id = '${id}'`)).toBe(1);
      }
      const dead = await s.db.query<{ reason: string; raw_hash: string; detail: string }>('SELECT reason, detail FROM dead_letter_events');
      for (const reason of new Set(bad.map((x) => x[1]))) {
        expect(dead.filter((x) => x.reason === reason).length, reason).toBeGreaterThanOrEqual(bad.filter((x) => x[1] === reason).length);
      }
      // The four identity fields with a wrong type are dead letters (null session/shasum are fine).
      const wrongIdentity = ['eventid', 'timestamp', 'session', 'shasum'].length * WRONG.length;
      expect(r.deadLettered).toBe(bad.length + wrongIdentity);
      expect(r.cleaned).toBeGreaterThanOrEqual(2);
      // Loading again adds nothing, and names no dead letter as new.
      const again = await load(s, [f], { batchSize: 100_000 });
      expect([again.inserted, again.deadLetteredNew, again.deadLettered]).toEqual([0, 0, r.deadLettered]);
    });
  });

  describe.skipIf(d.skip)(`[${d.name}] links out of the log folder (item 25)`, () => {
    const fresh = freshStores(d);

    it('a link from the folder to a secret file is not followed (and said so); the file named itself is loaded', async () => {
      const base = dir();
      const logs = path.join(base, 'logs');
      const secret = path.join(base, 'secret');
      fs.mkdirSync(logs);
      fs.writeFileSync(secret, 'root:$6$secret-hash:19000:0:99999:7:::\n', { mode: 0o600 });
      writeLines(path.join(logs, 'cowrie.json'), [cmd()]);
      fs.symlinkSync(secret, path.join(logs, 'cowrie.json.1'));
      const s = await fresh();
      const r = await load(s, [logs]);
      expect(r.linksNotFollowed).toEqual([path.join(logs, 'cowrie.json.1')]);
      expect(r.log.some((l) => l.startsWith('[WARNING]') && l.includes('cowrie.json.1'))).toBe(true);
      expect([r.inserted, r.deadLettered]).toEqual([1, 0]);
      expect(await count(s, 'dead_letter_events')).toBe(0);
      // Named on the command line, the link is the operator's choice (and not a JSON log: failed, not dead-lettered).
      const named = await load(s, [path.join(logs, 'cowrie.json.1')]);
      expect(named.failures.map((x) => x.reason)).toEqual(['not_json_log']);
      expect(await count(s, 'dead_letter_events')).toBe(0);
    });
  });
}
