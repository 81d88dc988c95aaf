/**
 * Loaders for different sensors writing into one PostgreSQL at once (issue 13, "Sharing one
 * PostgreSQL"): three cowrie-loader processes started together end with the same tables as the
 * same three loads one after another, and none fails on a deadlock. Small batches make many
 * transactions interleave on the IPs the sensors share.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateLogs } from '../../src/sim/log-generator.js';
import { openStore, type Store } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { createPgDatabase, dialectCases, tempDir } from '../helpers/dialects.js';
import { worldMmdbDir } from '../helpers/world.js';

const pgCase = dialectCases().find((c) => c.name === 'postgres')!;
const SENSORS = ['honeypot-01', 'honeypot-02', 'dshield-01'];

async function tables(store: Store): Promise<Record<string, unknown[]>> {
  const q = (sql: string) => store.db.query(sql);
  return {
    sessions: await q(`SELECT session_id, sensor, source_ip, first_event_at, last_event_at, event_count, login_attempts, command_count, file_downloads
                       FROM session_summaries ORDER BY session_id`),
    ips: await q('SELECT ip_address, first_seen, last_seen, session_count, sensors, current_asn FROM ip_inventory ORDER BY ip_address'),
    asns: await q('SELECT asn_number, unique_ip_count, total_session_count FROM asn_inventory ORDER BY asn_number'),
    events: await q('SELECT count(*) AS n, count(DISTINCT sensor) AS sensors FROM raw_events'),
  };
}

describe.skipIf(pgCase.skip)('[postgres] loaders for three sensors at once', () => {
  const stores: Store[] = [];
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
  });

  it('give the same tables as one after another, without a deadlock', async () => {
    const dir = tempDir('cowrie-parallel-');
    await generateLogs({ outDir: path.join(dir, 'logs'), sessions: 900, ips: 120, sensors: 3, days: 2, seed: 5 });
    const mmdb = await worldMmdbDir(7);
    const load = (url: string, sensor: string) => runCli('cowrie-loader', ['bulk', path.join(dir, 'logs', sensor), '--db', url, '--sensor', `s-${sensor}`, '--batch-size', '50', '-q'], { env: { COWRIE_CONFIG: '' } });
    const enrich = (url: string) => runCli('cowrie-enrich', ['refresh', '--db', url, '--ips', '0', '--offline', '--maxmind-dir', mmdb, '-q', '--status-dir', path.join(dir, 'status')], { env: { COWRIE_CONFIG: '' } });

    const serial = await createPgDatabase();
    await openStore(serial).then((s) => s.close()); // schema first, so the parallel side is not a migration race either
    for (const s of SENSORS) {
      const r = await load(serial, s);
      expect(r.code, r.stderr).toBe(0);
    }
    const parallel = await createPgDatabase();
    await openStore(parallel).then((s) => s.close());
    const results = await Promise.all(SENSORS.map((s) => load(parallel, s)));
    for (const r of results) {
      expect(r.stderr).not.toMatch(/deadlock/i);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const url of [serial, parallel]) expect((await enrich(url)).code).toBe(0);

    const a = await openStore(serial);
    const b = await openStore(parallel);
    stores.push(a, b);
    const ta = await tables(a);
    const tb = await tables(b);
    expect(ta.events).toEqual([{ n: expect.anything(), sensors: 3 }]);
    // IPs shared by the sensors are what the loaders contend for.
    expect((ta.ips as Array<{ sensors: string[] }>).filter((r) => r.sensors.length > 1).length).toBeGreaterThan(10);
    expect((ta.asns as unknown[]).length).toBeGreaterThan(0);
    expect(tb).toEqual(ta);
  });
});
