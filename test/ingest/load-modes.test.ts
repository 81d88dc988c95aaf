/**
 * Every way of loading gives the same tables (issue 10): the in-thread parser and the parse
 * worker (the CLI), bulk and delta, small transactions, and `bulk --fast` — which also must
 * take back what copies of one event added. An interrupted --fast load leaves the database
 * marked incomplete, and every command then refuses it with one line (exit 2).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateLogs } from '../../src/sim/log-generator.js';
import { openStore } from '../../src/store/store.js';
import { UserError } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { count, ev, load, snapshot, writeLines } from './load-helpers.js';

const root = tempDir('cowrie-load-modes-');
const logs = path.join(root, 'logs');
/** One rotated file again under another name: the same events twice in one load. */
const copy = path.join(root, 'copy', 'cowrie.json.copy');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

beforeAll(async () => {
  await generateLogs({ outDir: logs, sessions: 150, ips: 25, sensors: 2, days: 2, seed: 11, faults: true });
  const rotated = fs.readdirSync(logs, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && /\.json\.\d/.test(e.name));
  fs.mkdirSync(path.dirname(copy), { recursive: true });
  fs.copyFileSync(path.join(rotated[0].parentPath, rotated[0].name), copy);
});

async function tablesOf(url: string): Promise<Awaited<ReturnType<typeof snapshot>>> {
  const store = await openStore(url);
  try {
    return await snapshot(store);
  } finally {
    await store.close();
  }
}

async function loader(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli('cowrie-loader', [...args, '-q']);
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] every load mode gives the same tables`, () => {
    let reference: Awaited<ReturnType<typeof snapshot>>;
    let referenceEvents = 0;

    beforeAll(async () => {
      const url = await d.newUrl();
      const store = await openStore(url);
      try {
        const s = await load(store, [logs, copy], { parseInThread: true });
        expect(s.duplicates).toBeGreaterThan(0);
        referenceEvents = s.inserted;
        reference = await snapshot(store);
      } finally {
        await store.close();
      }
      expect(reference.raw_events.length).toBe(referenceEvents);
      expect(reference.dead_letter_events.length).toBeGreaterThan(0);
    });

    it('bulk through the parse worker, with transactions that end mid-chunk', async () => {
      const url = await d.newUrl();
      const r = await loader(['bulk', logs, copy, '--db', url, '--batch-size', '7']);
      expect(r.code, r.stderr).toBe(0);
      expect(await tablesOf(url)).toEqual(reference);
    });

    it('delta, then delta again (nothing new the second time)', async () => {
      const url = await d.newUrl();
      for (let i = 0; i < 2; i++) {
        const r = await runCli('cowrie-loader', ['delta', logs, copy, '--db', url]);
        expect(r.code, r.stderr).toBe(0);
        if (i === 1) expect(r.stdout).toContain('events_read=0 inserted=0');
      }
      expect(await tablesOf(url)).toEqual(reference);
    });

    it('bulk --fast: the same tables, copies counted as duplicates, and a later bulk or delta run adds nothing', async () => {
      const url = await d.newUrl();
      const r = await runCli('cowrie-loader', ['bulk', logs, copy, '--db', url, '--fast']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(` inserted=${referenceEvents.toLocaleString('en-US')} `);
      expect(await tablesOf(url)).toEqual(reference);
      // The unique key exists again: loading everything once more is all duplicates.
      const again = await runCli('cowrie-loader', ['bulk', logs, '--db', url]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain(' inserted=0 ');
      expect(await tablesOf(url)).toEqual(reference);
    });

    it('bulk --fast into a database that holds data is refused with one line, exit 2, nothing changed', async () => {
      const url = await d.newUrl();
      expect((await loader(['bulk', copy, '--db', url])).code).toBe(0);
      const before = await tablesOf(url);
      const r = await loader(['bulk', logs, '--db', url, '--fast']);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/--fast loads only into an empty database, and .* already holds data \(raw_events\): load without --fast$/)]);
      expect(await tablesOf(url)).toEqual(before);
    });

    it('text with tabs, carriage returns, backslashes and a literal \\N is stored as read (PostgreSQL loads it through COPY)', async () => {
      const file = path.join(root, `odd\tname\\${d.name}`, 'cowrie.json');
      const bad = 'not json\tat all \\N \r\\ end';
      writeLines(file, [ev('cowrie.command.input', 'ab12cd34ef56', 1, { input: 'echo \\N\t\\\\x' }), bad]);
      const url = await d.newUrl();
      const store = await openStore(url);
      try {
        const s = await load(store, [file]);
        expect(s.inserted).toBe(1);
        const [e] = await store.db.query<{ source: string; payload: unknown }>('SELECT source, payload FROM raw_events');
        expect(e.source).toBe(file);
        expect((typeof e.payload === 'string' ? JSON.parse(e.payload) : e.payload).input).toBe('echo \\N\t\\\\x');
        const [dl] = await store.db.query<{ source: string; raw_line: string }>('SELECT source, raw_line FROM dead_letter_events');
        expect(dl).toEqual({ source: file, raw_line: bad });
      } finally {
        await store.close();
      }
    });

    it('an interrupted --fast load leaves the database marked incomplete; every command refuses it (exit 2)', async () => {
      const url = await d.newUrl();
      const store = await openStore(url);
      const stop = new AbortController();
      try {
        // Interrupted after its first transaction, as Ctrl-C would.
        const err = await load(store, [logs], { fast: true, batchSize: 50, parseInThread: true, signal: stop.signal, onProgress: () => stop.abort() }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UserError);
        expect((err as UserError).exitCode).toBe(130);
        expect((err as Error).message).toMatch(/^interrupted: database .* is incomplete: .*delete the database .*and load again$/);
        expect(await count(store, 'raw_events')).toBeGreaterThan(0);
      } finally {
        await store.close();
      }
      await expect(openStore(url)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/is incomplete: a cowrie-loader bulk --fast load into it did not finish; delete the database/) });
      for (const [cmd, args] of [['cowrie-loader', ['delta', logs, '--db', url]], ['cowrie-db', ['info', '--db', url]]] as const) {
        const r = await runCli(cmd, [...args]);
        expect(r.code, `${cmd}: ${r.stderr}`).toBe(2);
        expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/is incomplete: .*load again$/)]);
      }
    });
  });
}
