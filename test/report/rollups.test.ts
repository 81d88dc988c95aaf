/**
 * The report rollups (migration 4) kept at ingest equal the rollups recomputed from the session
 * tables, whatever the load order: a re-load changes nothing, and a session whose earlier events
 * arrive later moves to the day of its first event with everything it had.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ingest } from '../../src/ingest/ingest.js';
import { silentLogger } from '../../src/log.js';
import { generateLogs } from '../../src/sim/log-generator.js';
import { backfillReportRollups } from '../../src/store/report-facts-repo.js';
import { openStore, type Store } from '../../src/store/store.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';

const TABLES: Array<[string, string]> = [
  ['report_daily', 'day, sensor'],
  ['report_credential_days', 'credential_hash, day, sensor'],
  ['report_command_days', 'command_hash, day, sensor'],
  ['report_credential_totals', 'credential_hash'],
  ['report_command_totals', 'command_hash'],
];

/** Every rollup row, numbers as numbers, rows whose counts are all 0 left out (a session moved away). */
async function rollups(store: Store): Promise<Record<string, Array<Record<string, unknown>>>> {
  const out: Record<string, Array<Record<string, unknown>>> = {};
  for (const [table, order] of TABLES) {
    const rows = await store.db.query<Record<string, unknown>>(`SELECT * FROM ${table} ORDER BY ${order}`);
    out[table] = rows
      .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])))
      .filter((r) => Object.values(r).some((v) => typeof v === 'number' && v !== 0));
  }
  return out;
}

async function recomputed(store: Store) {
  await store.db.transaction((tx) => backfillReportRollups(store.db, tx));
  return rollups(store);
}

/** One session across midnight, its events split over two files: the later half is loaded first. */
function midnightFiles(dir: string): { late: string; early: string } {
  const base = { session: 'midnight0001', src_ip: '198.51.100.77', sensor: 'honeypot-02' };
  const line = (o: Record<string, unknown>) => JSON.stringify({ ...base, ...o });
  const late = path.join(dir, 'late.json');
  const early = path.join(dir, 'early.json');
  fs.writeFileSync(late, [
    line({ eventid: 'cowrie.login.success', timestamp: '2024-01-02T00:00:05.000000Z', username: 'root', password: 'midnight' }),
    line({ eventid: 'cowrie.command.input', timestamp: '2024-01-02T00:00:06.000000Z', input: 'uname -a' }),
    line({ eventid: 'cowrie.session.closed', timestamp: '2024-01-02T00:00:09.000000Z', duration: 14 }),
  ].join('\n') + '\n');
  fs.writeFileSync(early, [
    line({ eventid: 'cowrie.session.connect', timestamp: '2024-01-01T23:59:55.000000Z', dst_ip: '192.0.2.1', dst_port: 22, src_port: 5555, protocol: 'ssh' }),
    line({ eventid: 'cowrie.login.failed', timestamp: '2024-01-01T23:59:58.000000Z', username: 'root', password: 'midnight' }),
    line({ eventid: 'cowrie.command.input', timestamp: '2024-01-01T23:59:59.000000Z', input: 'uname -a' }),
  ].join('\n') + '\n');
  return { late, early };
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] report rollups at ingest`, () => {
    it('equal a recount from the sessions in any load order, a re-load changes nothing, a session moves day with all it had', async () => {
      const dir = tempDir();
      const gen = await generateLogs({ outDir: path.join(dir, 'logs'), sessions: 150, ips: 40, sensors: 2, days: 2, seed: 7 });
      const midnight = midnightFiles(dir);
      const forward = await openStore(await d.newUrl());
      const backward = await openStore(await d.newUrl());
      try {
        for (const p of [midnight.late, ...[...gen.paths].reverse(), midnight.early]) {
          await ingest(backward, { paths: [p], mode: 'bulk', logger: silentLogger, batchSize: 37 });
        }
        const moved = await rollups(backward);
        // The session counts on the day of its first event, once, with both logins and both commands.
        const day = (r: Array<Record<string, unknown>>, dd: string) => r.filter((x) => x.day === dd && x.sensor === 'honeypot-02');
        const [s] = await backward.db.query<Record<string, unknown>>("SELECT first_event_at FROM session_summaries WHERE session_id = 'midnight0001'");
        expect(String(s.first_event_at)).toBe('2024-01-01T23:59:55.000000Z');
        const cred = moved.report_credential_days.filter((r) => r.day === '2024-01-02' && r.sensor === 'honeypot-02');
        expect(cred.some((r) => r.attempts === 2)).toBe(false);
        expect(day(moved.report_daily, '2024-01-01').length).toBe(1);
        expect(await recomputed(backward)).toEqual(moved);

        await ingest(forward, { paths: [midnight.early, ...gen.paths, midnight.late], mode: 'bulk', logger: silentLogger, batchSize: 50 });
        const once = await rollups(forward);
        expect(once).toEqual(moved);
        await ingest(forward, { paths: [dir], mode: 'bulk', logger: silentLogger });
        expect(await rollups(forward)).toEqual(once);
        expect(once.report_daily.reduce((a, r) => a + Number(r.sessions), 0)).toBe(151);
      } finally {
        await forward.close();
        await backward.close();
      }
    }, 120_000);

    it('migration 4 builds the rollups of a version-3 database', async () => {
      const dir = tempDir();
      const gen = await generateLogs({ outDir: path.join(dir, 'logs'), sessions: 60, ips: 20, sensors: 2, days: 2, seed: 3 });
      const url = await d.newUrl();
      const store = await openStore(url);
      await ingest(store, { paths: gen.paths, mode: 'bulk', logger: silentLogger });
      const loaded = await rollups(store);
      expect(loaded.report_daily.length).toBeGreaterThan(0);
      for (const [t] of TABLES) await store.db.run(`DROP TABLE ${t}`);
      await store.db.run("UPDATE schema_state SET value = '3' WHERE key = 'schema_version'");
      await store.close();
      const again = await openStore(url);
      try {
        expect(await rollups(again)).toEqual(loaded);
      } finally {
        await again.close();
      }
    }, 120_000);
  });
}
