/**
 * The report facts (credentials, commands, first-seen values) follow the ingest rules: only
 * events actually inserted count, so a re-load changes nothing and files load in any order to the
 * same rows; a database loaded before migration 3 gets them from its stored events.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ingest } from '../../src/ingest/ingest.js';
import { silentLogger } from '../../src/log.js';
import { generateLogs } from '../../src/sim/log-generator.js';
import { openStore, type Store } from '../../src/store/store.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';

async function facts(store: Store) {
  const q = (sql: string) => store.db.query<Record<string, unknown>>(sql);
  const norm = (rows: Array<Record<string, unknown>>) => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
  return {
    credentials: norm(await q('SELECT session_id, credential_hash, username, password, attempts, successes FROM session_credentials ORDER BY session_id, credential_hash')),
    commands: norm(await q('SELECT session_id, command_hash, command, executions FROM session_commands ORDER BY session_id, command_hash')),
    firstSeen: norm(await q('SELECT kind, value_hash, sensor, value, first_seen FROM first_seen_values ORDER BY kind, value_hash, sensor')),
  };
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] report facts at ingest`, () => {
    it('a re-load changes no count; files in reverse order give the same rows; totals match the summaries', async () => {
      const dir = tempDir();
      const gen = await generateLogs({ outDir: path.join(dir, 'logs'), sessions: 150, ips: 40, sensors: 2, days: 2, seed: 5 });
      const a = await openStore(await d.newUrl());
      const b = await openStore(await d.newUrl());
      try {
        await ingest(a, { paths: gen.paths, mode: 'bulk', logger: silentLogger, batchSize: 97 });
        const once = await facts(a);
        expect(once.credentials.length).toBeGreaterThan(0);
        expect(once.commands.length).toBeGreaterThan(0);
        await ingest(a, { paths: gen.paths, mode: 'bulk', logger: silentLogger });
        expect(await facts(a)).toEqual(once);
        for (const p of [...gen.paths].reverse()) await ingest(b, { paths: [p], mode: 'bulk', logger: silentLogger, batchSize: 50 });
        expect(await facts(b)).toEqual(once);
        // The same login and command counts as the session summaries.
        const [s] = await a.db.query<Record<string, unknown>>('SELECT sum(login_attempts) AS l, sum(command_count) AS c FROM session_summaries');
        expect(once.credentials.reduce((n, r) => n + Number(r.attempts), 0)).toBe(Number(s.l));
        expect(once.commands.reduce((n, r) => n + Number(r.executions), 0)).toBe(Number(s.c));
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('migration 3 fills the facts from the events a version-2 database already holds', async () => {
      const dir = tempDir();
      const gen = await generateLogs({ outDir: path.join(dir, 'logs'), sessions: 80, ips: 30, sensors: 2, days: 1, seed: 9 });
      const url = await d.newUrl();
      const store = await openStore(url);
      await ingest(store, { paths: gen.paths, mode: 'bulk', logger: silentLogger });
      const loaded = await facts(store);
      // Back to version 2: the tables migration 3 creates are gone.
      for (const t of ['session_credentials', 'session_commands', 'first_seen_values']) await store.db.run(`DROP TABLE ${t}`);
      await store.db.run('DROP INDEX session_summaries_first_event');
      await store.db.run("UPDATE schema_state SET value = '2' WHERE key = 'schema_version'");
      await store.close();
      const again = await openStore(url);
      try {
        expect(await facts(again)).toEqual(loaded);
      } finally {
        await again.close();
      }
    });
  });
}
