import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateLogs, type GenerateLogsSummary } from '../../src/sim/log-generator.js';
import { readJson } from '../../src/store/schema.js';
import { openStore, type Store } from '../../src/store/store.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { count, ev, fileLines, writeLines } from './load-helpers.js';

const hasBzip2 = spawnSync('bzip2', ['--help']).status === 0;
const isRoot = process.getuid?.() === 0;

const root = tempDir('cowrie-load-faults-');
fs.chmodSync(root, 0o755);
let gen: GenerateLogsSummary;
const logs = path.join(root, 'logs');

beforeAll(async () => {
  gen = await generateLogs({ outDir: logs, sessions: 120, ips: 20, sensors: 2, days: 2, seed: 5, faults: true });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const DEAD_REASONS = ['bad_timestamp', 'invalid_json', 'missing_eventid', 'missing_timestamp', 'not_an_object'];

/** A folder of good files plus broken ones, for the exit-code tests. */
function brokenFolder(): { dir: string; good: string[]; corruptGz: string; corruptBz: string | null; goodLines: string[]; gzLines: string[] } {
  const dir = fs.mkdtempSync(path.join(root, 'broken-'));
  fs.chmodSync(dir, 0o755);
  const good = [
    writeLines(path.join(dir, 'a', 'cowrie.json'), Array.from({ length: 50 }, (_, i) => ev('cowrie.command.input', 'good1', i, { input: `ls ${i}` }))),
    writeLines(path.join(dir, 'c', 'cowrie.json.2024-01-01'), Array.from({ length: 30 }, (_, i) => ev('cowrie.command.input', 'good2', i, { input: `pwd ${i}` }))),
  ];
  for (const g of good) fs.chmodSync(path.dirname(g), 0o755);
  // Enough distinct data that the part before the cut decompresses to many complete lines.
  const gzLines = Array.from({ length: 4000 }, (_, i) => ev('cowrie.command.input', 'gzsess', i, { input: `cat /proc/${i * 7919}/status; echo ${(i * 2654435761) % 1e9}` }));
  const gz = gzipSync(`${gzLines.join('\n')}\n`);
  const corruptGz = path.join(dir, 'b', 'cowrie.json.1.gz');
  fs.mkdirSync(path.dirname(corruptGz), { mode: 0o755 });
  fs.writeFileSync(corruptGz, gz.subarray(0, Math.floor(gz.length * 0.6)));
  let corruptBz: string | null = null;
  if (hasBzip2) {
    const bz = execFileSync('bzip2', ['-c'], { input: Buffer.from(`${gzLines.slice(0, 100).join('\n')}\n`) });
    corruptBz = path.join(dir, 'b', 'cowrie.json.2.bz2');
    // Keep the magic bytes and the block header, scramble the rest.
    const bad = Buffer.from(bz);
    for (let i = 10; i < bad.length; i++) bad[i] ^= 0x5a;
    fs.writeFileSync(corruptBz, bad);
  }
  return { dir, good, corruptGz, corruptBz, goodLines: good.flatMap(fileLines), gzLines };
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] bad input`, () => {
    const open: Store[] = [];
    afterEach(async () => {
      while (open.length) await open.pop()!.close();
    });
    const storeFor = async (url: string) => {
      const s = await openStore(url);
      open.push(s);
      return s;
    };

    it('a log with every fault loads every valid event, dead-letters each bad line with its reason, and exits 0', async () => {
      const url = await d.newUrl();
      const r = await runCli('cowrie-loader', ['bulk', logs, '--db', url]);
      expect(r.code, r.stderr).toBe(0);
      const days = 2;
      expect(r.stdout).toMatch(new RegExp(`dead_lettered=${5 * days}\\b`));
      expect(r.stdout).toMatch(new RegExp(`events_read=${gen.events + gen.faultLines}\\b`));
      expect(r.stdout).toMatch(new RegExp(`inserted=${gen.events + 7 * days}\\b`));
      const s = await storeFor(url);
      expect(await count(s, 'raw_events')).toBe(gen.events + 7 * days);
      const dead = await s.db.query<{ source: string; source_offset: number; reason: string; raw_line: string; detail: string }>(
        'SELECT source, source_offset, reason, raw_line, detail FROM dead_letter_events ORDER BY reason, source_offset',
      );
      expect(dead).toHaveLength(5 * days);
      expect([...new Set(dead.map((x) => x.reason))]).toEqual(DEAD_REASONS);
      for (const x of dead) {
        // The offset points at the line in its file, and the raw text is that line.
        const buf = fs.readFileSync(x.source);
        const end = buf.indexOf(0x0a, Number(x.source_offset));
        expect(buf.subarray(Number(x.source_offset), end).toString()).toBe(x.raw_line);
        expect(x.detail.length).toBeGreaterThan(0);
      }
      // Cleaned but kept: escaped and raw NUL removed, invalid UTF-8 replaced, long fields whole, unknown eventid kept, mapped IPv4 plain.
      const logins = await s.db.query<{ payload: unknown }>("SELECT payload FROM raw_events WHERE event_type = 'cowrie.login.failed'");
      const users = logins.map((x) => (readJson(x.payload) as { username: string }).username);
      expect(users.filter((u) => u === 'root').length).toBeGreaterThanOrEqual(days);
      expect(users).toContain('admin');
      expect(users.some((u) => u.startsWith('user') && u.includes('\ufffd'))).toBe(true);
      expect(users.some((u) => u.length === 1000)).toBe(true);
      expect(users.every((u) => !u.includes('\0'))).toBe(true);
      const cmds = await s.db.query<{ payload: unknown }>("SELECT payload FROM raw_events WHERE event_type = 'cowrie.command.input'");
      expect(cmds.map((x) => (readJson(x.payload) as { input: string }).input.length)).toContain(100 * 1024 + 'echo  > /tmp/.x'.length);
      expect(await count(s, 'raw_events', "WHERE event_type = 'cowrie.plugin.custom_event'")).toBe(days);
      expect(await count(s, 'raw_events', "WHERE src_ip LIKE '::ffff:%'")).toBe(0);
      // Loading again dead-letters nothing new.
      const again = await runCli('cowrie-loader', ['bulk', logs, '--db', url]);
      expect(again.code).toBe(0);
      expect(await count(s, 'dead_letter_events')).toBe(5 * days);
    });

    it('a corrupt gzip or bzip2 file and a missing path are reported by name, the other files are loaded, exit 1', async () => {
      const b = brokenFolder();
      const missing = path.join(b.dir, 'no-such-file.json');
      const url = await d.newUrl();
      // The default batch is larger than the corrupt file: what was read before the damage must still be stored.
      const r = await runCli('cowrie-loader', ['bulk', b.dir, missing, '--db', url]);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stderr).toContain(b.corruptGz);
      if (b.corruptBz) expect(r.stderr).toContain(b.corruptBz);
      expect(r.stderr).toContain(missing);
      expect(r.stdout).toMatch(/failed [12]\)/);
      const s = await storeFor(url);
      const stored = new Set((await s.db.query<{ payload_hash: string; session_id: string }>('SELECT session_id FROM raw_events')).map((x) => x.session_id));
      expect(stored.has('good1') && stored.has('good2')).toBe(true);
      expect(await count(s, 'raw_events', "WHERE session_id IN ('good1', 'good2')")).toBe(b.goodLines.length);
      // From the corrupt gzip: the complete lines before the damage, in order, and nothing else.
      const gzRows = await s.db.query<{ source_offset: number }>("SELECT source_offset FROM raw_events WHERE session_id = 'gzsess' ORDER BY source_offset");
      expect(gzRows.length).toBeGreaterThan(0);
      expect(gzRows.length).toBeLessThan(b.gzLines.length);
      let off = 0;
      gzRows.forEach((row, i) => {
        expect(Number(row.source_offset)).toBe(off);
        off += Buffer.byteLength(b.gzLines[i]) + 1;
      });
    });

    it('an unreadable file is reported by name; the other files are still loaded; exit 1', async () => {
      const b = brokenFolder();
      const secret = writeLines(path.join(b.dir, 'd', 'cowrie.json'), [ev('cowrie.session.connect', 'hidden', 1)]);
      fs.chmodSync(path.dirname(secret), 0o755);
      fs.chmodSync(secret, 0o000);
      const url = await d.newUrl();
      let r;
      if (isRoot) {
        // root reads any file: run the loader as nobody, with a database folder nobody can write.
        const dbDir = fs.mkdtempSync(path.join(root, 'db-'));
        fs.chmodSync(dbDir, 0o777);
        const runUrl = d.name === 'sqlite' ? `sqlite:${path.join(dbDir, 'x.sqlite')}` : url;
        const p = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, path.join(ROOT, 'dist/src/cli/cowrie-loader.js'), 'bulk', path.join(b.dir, 'a'), secret, path.join(b.dir, 'c'), '--db', runUrl], { encoding: 'utf8' });
        r = { code: p.status, stderr: p.stderr, stdout: p.stdout, url: runUrl };
      } else {
        r = { ...(await runCli('cowrie-loader', ['bulk', path.join(b.dir, 'a'), secret, path.join(b.dir, 'c'), '--db', url])), url };
      }
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(secret);
      const s = await storeFor(r.url);
      expect(await count(s, 'raw_events')).toBe(b.goodLines.length);
    });
  });
}
