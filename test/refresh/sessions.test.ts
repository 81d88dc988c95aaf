/**
 * Session snapshots (`--sessions N`): a copy of what was known about the session's IP, taken
 * once and frozen; sessions of unenriched IPs wait; re-running changes nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readJson } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { dialectCases } from '../helpers/dialects.js';
import { buildWorld, expectInOrder, logLines, type World } from '../helpers/world.js';

interface SessionRow {
  session_id: string; source_ip: string; last_event_at: string; snapshot_asn: number | null; snapshot_country: string | null;
  snapshot_classification: string | null; enrichment: unknown; enrichment_at: string | null;
}

const sessions = (store: Store) => store.db.query<SessionRow>(
  'SELECT session_id, source_ip, last_event_at, snapshot_asn, snapshot_country, snapshot_classification, enrichment, enrichment_at FROM session_summaries ORDER BY session_id');

async function ipFacts(store: Store) {
  const rows = await store.db.query<{ ip_address: string; current_asn: number | null; geo_country: string | null; enrichment: unknown; enrichment_updated_at: string | null }>(
    'SELECT ip_address, current_asn, geo_country, enrichment, enrichment_updated_at FROM ip_inventory');
  return new Map(rows.map((r) => [r.ip_address, r]));
}

/** Every snapshotted session carries exactly its IP's data. */
async function expectSnapshotsMatch(store: Store): Promise<number> {
  const ips = await ipFacts(store);
  let n = 0;
  for (const s of await sessions(store)) {
    if (s.enrichment_at === null) continue;
    n++;
    const ip = ips.get(s.source_ip)!;
    const e = readJson<Record<string, { classification?: string | null }>>(ip.enrichment)!;
    expect(s.snapshot_asn === null ? null : Number(s.snapshot_asn), s.session_id).toBe(ip.current_asn === null ? null : Number(ip.current_asn));
    expect(s.snapshot_country).toBe(ip.geo_country);
    expect(s.snapshot_classification).toBe(e.greynoise?.classification ?? 'unknown');
    expect(readJson(s.enrichment)).toEqual(e);
  }
  return n;
}

const resetSnapshots = (store: Store) => store.db.run(
  'UPDATE session_summaries SET enrichment = NULL, enrichment_at = NULL, snapshot_asn = NULL, snapshot_country = NULL, snapshot_classification = NULL');

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] refresh --sessions: snapshots`, () => {
    let w: World | null = null;
    let store: Store | null = null;
    afterEach(async () => {
      await w?.close(); // closes the stores it opened too
      w = null;
    });

    it('snapshots match the IP data, newest first in batches; re-running changes nothing; snapshots stay frozen', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 400, ips: 100 });
      store = await w.open();
      const r0 = await w.refresh(['--sessions', 'all', '--ips', '0', '--verbose']);
      expect(r0.code, r0.stderr).toBe(0);
      // A fresh database: the sessions step finds none ready and says why; after the IP passes every
      // session is brought up to date, and the last line counts them.
      const ipsUpdated = /Pass 3 complete: (\d+) IPs enriched/.exec(r0.stderr)![1];
      expectInOrder(logLines(r0.stderr), [
        '[INFO] [sessions] 0 sessions updated',
        '[INFO] [sessions] 400 sessions wait for their IPs to be enriched (snapshotted after the IP passes of this run, within --sessions)',
        '[INFO] [sessions] 400 more sessions snapshotted from IPs enriched in this run',
        `[INFO] Refresh complete: 400 sessions, 0 files, ${ipsUpdated} IPs updated`,
      ]);
      expect(await expectSnapshotsMatch(store)).toBe(400);

      await resetSnapshots(store);
      const newest = (await sessions(store)).sort((a, b) => b.last_event_at.localeCompare(a.last_event_at) || b.session_id.localeCompare(a.session_id))
        .slice(0, 30).map((s) => s.session_id).sort();
      const r1 = await w.refresh(['--sessions', '30', '--commit-interval', '20', '--verbose']);
      expect(r1.code, r1.stderr).toBe(0);
      expectInOrder(logLines(r1.stderr), [
        '[INFO] Refresh command started with limits: sessions=30, files=0, ips=0',
        '[INFO] [sessions] Processing 30 sessions for re-enrichment...',
        '[INFO] [sessions] committed 20 rows...',
        '[INFO] [sessions] committed 30 rows...',
        '[INFO] [sessions] 30 sessions updated',
        '[INFO] Refresh complete: 30 sessions, 0 files, 0 IPs updated',
      ]);
      expect((await sessions(store)).filter((s) => s.enrichment_at !== null).map((s) => s.session_id).sort()).toEqual(newest);

      const r2 = await w.refresh(['--sessions', 'all', '--commit-interval', '50', '--verbose']);
      expect(r2.code, r2.stderr).toBe(0);
      expect(logLines(r2.stderr)).toContain('[INFO] [sessions] Processing 370 sessions for re-enrichment...');
      expect(logLines(r2.stderr)).toContain('[INFO] [sessions] 370 sessions updated');
      expect(await expectSnapshotsMatch(store)).toBe(400);

      // Again: nothing to do, nothing changed.
      const before = await sessions(store);
      const r3 = await w.refresh(['--sessions', 'all', '--verbose']);
      expect(r3.code, r3.stderr).toBe(0);
      expectInOrder(logLines(r3.stderr), ['[INFO] [sessions] Processing 0 sessions for re-enrichment...', '[INFO] [sessions] 0 sessions updated']);
      expect(await sessions(store)).toEqual(before);

      // The IP changes hands later: its sessions keep what was known then.
      const ip = before[0].source_ip;
      await store.db.run("UPDATE ip_inventory SET geo_country = 'ZZ', current_asn = 64512, enrichment_updated_at = ? WHERE ip_address = ?", [new Date().toISOString().replace('Z', '000Z'), ip]);
      const r4 = await w.refresh(['--sessions', 'all']);
      expect(r4.code, r4.stderr).toBe(0);
      expect(await sessions(store)).toEqual(before);
    });

    it('sessions whose IP is not enriched keep empty snapshots and stay candidates', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 300, ips: 80 });
      store = await w.open();
      const all = await sessions(store);
      const counts = new Map<string, number>();
      for (const s of all) counts.set(s.source_ip, (counts.get(s.source_ip) ?? 0) + 1);
      const chosen = [...counts.keys()].slice(0, 3);
      const theirs = all.filter((s) => chosen.includes(s.source_ip)).length;

      // Nothing enriched yet: no candidates at all.
      const r0 = await w.refresh(['--sessions', 'all', '--verbose']);
      expect(logLines(r0.stderr)).toContain('[INFO] [sessions] Processing 0 sessions for re-enrichment...');

      const r1 = await w.refresh(['--ip', chosen[0], '--ip', chosen[1], '--ip', chosen[2], '--sessions', 'all', '--verbose']);
      expect(r1.code, r1.stderr).toBe(0);
      // Sessions first (none ready), then the IPs, then their sessions caught up.
      expectInOrder(logLines(r1.stderr), [
        '[INFO] [sessions] 0 sessions updated',
        '[INFO] [sessions] 300 sessions wait for their IPs to be enriched (snapshotted after the IP passes of this run, within --sessions)',
        '[INFO] Pass 3 complete: 3 IPs enriched, 0 errors',
        `[INFO] [sessions] ${theirs} more sessions snapshotted from IPs enriched in this run`,
        `[INFO] Refresh complete: ${theirs} sessions, 0 files, 3 IPs updated`,
      ]);
      const after = await sessions(store);
      for (const s of after) {
        if (chosen.includes(s.source_ip)) {
          expect(s.enrichment_at, s.session_id).not.toBeNull();
        } else {
          expect([s.enrichment_at, s.snapshot_asn, s.snapshot_country, s.snapshot_classification, s.enrichment], s.session_id).toEqual([null, null, null, null, null]);
        }
      }
      expect(await expectSnapshotsMatch(store)).toBe(theirs);

      // They are still candidates: once their IPs are enriched, they get snapshots (one without a timestamp too).
      const other = after.find((s) => !chosen.includes(s.source_ip))!;
      await store.db.run('UPDATE session_summaries SET last_event_at = NULL WHERE session_id = ?', [other.session_id]);
      const r2 = await w.refresh(['--sessions', 'all', '--ips', '0', '--commit-interval', '7']);
      expect(r2.code, r2.stderr).toBe(0);
      expect((await sessions(store)).every((s) => s.enrichment_at !== null)).toBe(true);
      expect(await expectSnapshotsMatch(store)).toBe(300);
    });

    it('the catch-up after the IP passes respects --sessions: a limit caps the whole run, no --sessions skips it', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 200, ips: 60 });
      store = await w.open();
      // No --sessions: the IPs are enriched, no session is snapshotted.
      const r0 = await w.refresh(['--ips', '10', '--verbose']);
      expect(r0.code, r0.stderr).toBe(0);
      expect(r0.stderr).not.toMatch(/more sessions snapshotted/);
      expect(logLines(r0.stderr)).toContain('[INFO] Refresh complete: 0 sessions, 0 files, 10 IPs updated');
      expect((await sessions(store)).filter((s) => s.enrichment_at !== null)).toEqual([]);

      // --sessions 25 with more than 25 sessions ready after the IP passes: 25 in all, and the line says so.
      const r1 = await w.refresh(['--sessions', '25', '--ips', '0', '--verbose']);
      expect(r1.code, r1.stderr).toBe(0);
      const ready = /\[sessions\] (\d+) sessions updated/.exec(r1.stderr)![1];
      expect(Number(ready)).toBeLessThanOrEqual(25);
      expect(Number(ready)).toBeGreaterThan(0);
      // Sessions of the 50 IPs not enriched yet wait for the IP passes.
      expect(logLines(r1.stderr).some((l) => /^\[INFO\] \[sessions\] \d+ sessions wait for their IPs to be enriched/.test(l))).toBe(true);
      expect(logLines(r1.stderr).some((l) => /^\[INFO\] Refresh complete: 25 sessions, 0 files, \d+ IPs updated$/.test(l))).toBe(true);
      expect((await sessions(store)).filter((s) => s.enrichment_at !== null)).toHaveLength(25);
    });
  });
}
