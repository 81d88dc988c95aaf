/**
 * `cowrie-loader follow` as a service: a writer process appends while follow runs (both from dist/),
 * through Cowrie's daily rename, logrotate's copytruncate and a delete/recreate, a kill -9 and a
 * SIGTERM; the tables must end as one bulk load of everything written.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { load, snapshot } from '../ingest/load-helpers.js';
import { parseMetrics, rows, startFollow, stop, until, write, type Running } from './follow-helpers.js';

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] cowrie-loader follow`, () => {
    const running: Running[] = [];
    const stores: Store[] = [];
    afterEach(async () => {
      for (const r of running.splice(0)) if (r.child.exitCode === null && r.child.signalCode === null) await stop(r, 'SIGKILL');
      for (const s of stores.splice(0)) await s.close();
    });

    /** The tables one bulk load of `paths` gives, in a fresh database. */
    async function bulkSnapshot(paths: string[]) {
      const s = await openStore(await d.newUrl());
      stores.push(s);
      const r = await load(s, paths);
      expect(r.filesFailed).toEqual([]);
      return snapshot(s);
    }

    it('waits for the folder, loads lines as written, through a daily rename, a copytruncate and a delete/recreate, losing and duplicating nothing; /metrics and follow.json agree', async () => {
      const root = tempDir('cowrie-follow-');
      const logs = path.join(root, 'logs');
      const live = path.join(logs, 'cowrie.json');
      const truth = path.join(root, 'truth.json');
      const statusDir = path.join(root, 'status');
      const url = await d.newUrl();
      const held: Store[] = [];
      const f = startFollow([logs, '--db', url, '--status-dir', statusDir, '--metrics', '127.0.0.1:0']);
      running.push(f);
      // The folder does not exist yet: follow waits for it.
      await until(async () => f.stderr(), (e) => e.includes('Waiting for'));
      expect(f.child.exitCode).toBeNull();

      await write({ target: live, truth, steps: [{ write: [0, 50] }] });
      expect(await until(() => rows(url, held), (n) => n === 50)).toBe(50);

      // Cowrie's daily rotation, with lines written just before the rename that follow has not read yet.
      await write({ target: live, truth, steps: [{ write: [50, 80] }, { rotate: 'cowrie.json.2024-01-01' }, { write: [80, 100] }] });
      expect(await until(() => rows(url, held), (n) => n === 100)).toBe(100);

      // logrotate copytruncate: lines not yet read are in the copy; the live file starts again at 0.
      await write({ target: live, truth, steps: [{ write: [100, 120] }, { copytruncate: 'cowrie.json.1' }, { write: [120, 140] }] });
      expect(await until(() => rows(url, held), (n) => n === 140)).toBe(140);

      // Deleted and created again: the deleted file's last lines are read through the open handle.
      await write({ target: live, truth, steps: [{ write: [140, 160] }, { recreate: true }, { write: [160, 180] }] });
      expect(await until(() => rows(url, held), (n) => n === 180)).toBe(180);

      const metricsUrl = /Serving metrics on (\S+)/.exec(f.stderr())?.[1];
      expect(metricsUrl).toBeDefined();
      const res = await fetch(metricsUrl!);
      expect(res.status).toBe(200);
      const m = parseMetrics(await res.text());
      // Inserted counts agree with the table; the copy re-read by the folder scan is all duplicates.
      expect(m.get('cowrie_follow_events_total{outcome="inserted"}')).toBe(180);
      expect(m.get('cowrie_follow_events_total{outcome="duplicate"}')).toBeGreaterThan(0);
      expect(m.get('cowrie_follow_dead_letters_total{outcome="new"}')).toBe(0);
      expect(m.get('cowrie_enrich_queue_length{source="greynoise"}')).toBe(0);
      expect(m.get('cowrie_follow_last_commit_timestamp_seconds')).toBeGreaterThan(0);
      expect(m.has('process_resident_memory_bytes')).toBe(true);
      expect((await fetch(metricsUrl!.replace('/metrics', '/other'))).status).toBe(404);

      await stop(f);
      expect(f.child.exitCode).toBe(0);
      expect(f.stdout()).toMatch(/inserted=180 /);
      if (held[0]) await held[0].close();
      const status = JSON.parse(fs.readFileSync(path.join(statusDir, 'follow.json'), 'utf8'));
      expect(status).toMatchObject({ phase: 'follow', state: 'complete', inserted: 180, dead_lettered: 0, lag_bytes: 0, last_error: null });
      expect(status.files.map((x: { path: string }) => x.path)).toContain(live);

      const s = await openStore(url);
      stores.push(s);
      expect(await snapshot(s)).toEqual(await bulkSnapshot([truth]));
      // The renamed file's cursor moved with it: a delta run over the folder finds nothing new.
      const again = await load(s, [logs], { mode: 'delta' });
      expect(again.inserted).toBe(0);
      expect(again.filesSkipped).toBeGreaterThanOrEqual(2);
    });

    it('kill -9 while the writer appends, a restart, then SIGTERM: the tables of one bulk load of the final files, nothing read twice', async () => {
      const root = tempDir('cowrie-follow-kill-');
      const logs = path.join(root, 'logs');
      const live = path.join(logs, 'cowrie.json');
      const url = await d.newUrl();
      const held: Store[] = [];
      const total = 4000;
      // 16 s of writing: the kill lands mid-write even when a loaded machine starts follow slowly.
      const writer = write({ target: live, steps: [{ write: [0, total], rate: 250 }] });
      const first = startFollow([logs, '--db', url, '-q']);
      running.push(first);
      const atKill = await until(() => rows(url, held), (n) => n > 0);
      await stop(first, 'SIGKILL');
      expect(atKill).toBeGreaterThan(0);
      expect(atKill).toBeLessThan(total); // killed while the writer was still appending
      const second = startFollow([logs, '--db', url, '--verbose']);
      running.push(second);
      await writer;
      expect(await until(() => rows(url, held), (n) => n === total)).toBe(total);
      await until(async () => second.stderr(), (e) => e.includes('Following'));
      await stop(second);
      expect(second.child.exitCode).toBe(0);
      // Resumed from the committed cursor: no line was read again.
      expect(second.stdout()).toMatch(/ duplicates=0 /);
      if (held[0]) await held[0].close();
      const s = await openStore(url);
      stores.push(s);
      expect(await snapshot(s)).toEqual(await bulkSnapshot([logs]));
    });

    it('bad flags: one line, exit 2', async () => {
      const url = await d.newUrl();
      const bad = await runCli('cowrie-loader', ['follow', tempDir(), '--db', url, '--metrics', 'nonsense']);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split('\n')).toEqual(['cowrie-loader: error: --metrics must be HOST:PORT (e.g. 127.0.0.1:9464), got nonsense']);
      const size = await runCli('cowrie-loader', ['follow', tempDir(), '--db', url, '--batch-size', '0']);
      expect(size.code).toBe(2);
      expect(size.stderr).toMatch(/--batch-size must be a whole number/);
      // A metrics port already taken: one line, exit 2, before anything is followed.
      const taken = net.createServer();
      await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
      const port = (taken.address() as net.AddressInfo).port;
      try {
        const busy = await runCli('cowrie-loader', ['follow', tempDir(), '--db', url, '--metrics', `127.0.0.1:${port}`]);
        expect(busy.code).toBe(2);
        expect(busy.stderr.trim().split('\n')).toEqual([`cowrie-loader: error: cannot serve metrics on 127.0.0.1:${port}: EADDRINUSE`]);
      } finally {
        taken.close();
      }
    });
  });
}
