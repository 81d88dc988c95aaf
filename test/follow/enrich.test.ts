/**
 * `cowrie-loader follow --enrich` against the simulators (MaxMind world databases, Cymru, GreyNoise):
 * a writer process appends while follow runs; every new IP gets its ASN, country and GreyNoise
 * answer; after a kill -9 and a restart no answer already in the cache is asked for again; SIGTERM exits 0.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EVENTS_PER_SESSION } from '../../bench/lib/live-writer.js';
import { readJson } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { worldNetwork } from '../../src/sim/world.js';
import { runCli } from '../helpers/cli.js';
import { buildWorld, type World } from '../helpers/world.js';
import { parseMetrics, startFollow, stop, until, write, type Running } from './follow-helpers.js';

const SEED = 7;

interface Progress { ips: number; done: number; gnCached: number }

/**
 * IPs in ip_inventory; those fully enriched (nothing pending, a country, and the ASN the simulated
 * Internet announces for them — a few networks announce none); GreyNoise answers in the cache.
 */
async function progress(store: Store): Promise<Progress> {
  const rows = await store.db.query<{ ip_address: string; current_asn: number | null; geo_country: string | null; enrichment_pending: string | null; enrichment_updated_at: string | null }>(
    'SELECT ip_address, current_asn, geo_country, enrichment_pending, enrichment_updated_at FROM ip_inventory');
  const done = rows.filter((r) => r.enrichment_updated_at !== null && r.enrichment_pending === null && r.geo_country !== null
    && (r.current_asn === null ? null : Number(r.current_asn)) === (worldNetwork(r.ip_address, SEED).as?.asn ?? null)).length;
  const [g] = await store.db.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM enrichment_cache WHERE service = 'greynoise'");
  return { ips: rows.length, done, gnCached: Number(g.n) };
}

/** Answers the GreyNoise simulator gave (200 or 404: paid), per IP. */
function answersPerIp(w: World): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of w.greynoise.stats.log) if (e.key && (e.status === 200 || e.status === 404)) out.set(e.key, (out.get(e.key) ?? 0) + 1);
  return out;
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] cowrie-loader follow --enrich`, () => {
    let w: World | null = null;
    const running: Running[] = [];
    afterEach(async () => {
      for (const r of running.splice(0)) if (r.child.exitCode === null && r.child.signalCode === null) await stop(r, 'SIGKILL');
      await w?.close();
      w = null;
    });

    it('enriches new IPs while following (ASN, country, GreyNoise); a kill -9 and restart pays no cached answer again; SIGTERM exits 0', async () => {
      w = await buildWorld({ url: await d.newUrl(), seed: SEED, sessions: 0, cymru: { latencyMsPerBatch: 50 } });
      const root = tempDir('cowrie-follow-enrich-');
      const live = path.join(root, 'logs', 'cowrie.json');
      // GreyNoise slowed to 20/s so the kill lands while its answers are still arriving.
      const args = [live, ...w.flags(), '--greynoise-rate', '20', '--enrich', '--metrics', '127.0.0.1:0', '-v'];
      const store = await w.open();

      let f = startFollow(args, w.env());
      running.push(f);
      // 40 sessions from 40 IPs, written at 400 lines/s.
      await write({ target: live, steps: [{ write: [0, 40 * EVENTS_PER_SESSION], rate: 400 }] });
      let p = await until(() => progress(store).catch(() => ({ ips: 0, done: 0, gnCached: 0 })), (v) => v.ips === 40 && v.done === 40, 30_000);
      expect(p).toEqual({ ips: 40, done: 40, gnCached: 40 });
      // The cycle's figures reach /metrics when it ends (just after its last commit).
      const metricsUrl = /Serving metrics on (\S+)/.exec(f.stderr())![1];
      const gnAnswered = (m: Map<string, number>) => (m.get('cowrie_enrich_requests_total{source="greynoise",outcome="hit"}') ?? 0)
        + (m.get('cowrie_enrich_requests_total{source="greynoise",outcome="miss"}') ?? 0);
      const m = await until(async () => parseMetrics(await (await fetch(metricsUrl)).text()), (v) => gnAnswered(v) === 40, 30_000);
      expect(gnAnswered(m)).toBe(40);
      expect(m.get('cowrie_enrich_queue_length{source="greynoise"}')).toBe(0);
      expect(m.get('cowrie_enrich_quota_remaining{source="greynoise"}')).toBeGreaterThan(0);

      // 80 more IPs; kill -9 once some of their GreyNoise answers are stored, while the writer still writes.
      const writing = write({ target: live, steps: [{ write: [40 * EVENTS_PER_SESSION, 120 * EVENTS_PER_SESSION], rate: 100 }] });
      p = await until(() => progress(store), (v) => v.gnCached >= 50, 30_000);
      f.child.kill('SIGKILL');
      await f.exited;
      const cachedAtKill = new Set((await store.db.query<{ cache_key: string }>("SELECT cache_key FROM enrichment_cache WHERE service = 'greynoise'")).map((r) => r.cache_key));
      expect(cachedAtKill.size).toBeGreaterThanOrEqual(50);
      await writing;

      f = startFollow(args, w.env());
      running.push(f);
      p = await until(() => progress(store), (v) => v.ips === 120 && v.done === 120, 30_000);
      expect(p).toEqual({ ips: 120, done: 120, gnCached: 120 });
      // A session's snapshot follows its IP's enrichment within the same cycle: wait for that cycle.
      const unsnapshotted = async () => Number((await store.db.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM session_summaries WHERE enrichment_at IS NULL'))[0].n);
      await until(unsnapshotted, (n) => n === 0, 30_000);
      await stop(f);
      expect(f.child.exitCode).toBe(0);
      expect(f.stdout()).toMatch(/^follow stopped: /);

      // Every IP answered; an answer stored before the kill was never asked for again. (One in
      // flight at the kill — answered by the simulator, never received — may be asked once more.)
      const answers = answersPerIp(w);
      expect(answers.size).toBe(120);
      for (const ip of cachedAtKill) expect(answers.get(ip), ip).toBe(1);
      const askedTwice = [...answers.values()].filter((n) => n > 1).length;
      expect(askedTwice).toBeLessThanOrEqual(20);
      // Sessions got their snapshot once their IP was enriched.
      const [s] = await store.db.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM session_summaries WHERE enrichment_at IS NULL');
      expect(Number(s.n)).toBe(0);
      const status = JSON.parse(fs.readFileSync(path.join(w.statusDir, 'follow.json'), 'utf8'));
      expect(status.queues.greynoise).toBe(0);
    }, 240_000);

    it('a slow GreyNoise holds back nothing else: ASN and country committed while GreyNoise is still owed, its answer merged in later; sessions wait for it; a restart pays no answer twice', async () => {
      // Every GreyNoise answer takes 500 ms (under the 2 s a stopping run waits for requests in flight), at 4 requests/s.
      w = await buildWorld({ url: await d.newUrl(), seed: SEED, sessions: 0, cymru: { latencyMsPerBatch: 50 }, greynoise: { latencyMs: 500 } });
      const root = tempDir('cowrie-follow-enrich-slow-');
      const live = path.join(root, 'logs', 'cowrie.json');
      const args = [live, ...w.flags(), '--greynoise-rate', '4', '--enrich'];
      const store = await w.open();
      type Row = { ip_address: string; current_asn: number | null; geo_country: string | null; enrichment_pending: string | null; enrichment: unknown };
      const readRows = async () => (await store.db.query<Row>('SELECT ip_address, current_asn, geo_country, enrichment_pending, enrichment FROM ip_inventory'))
        .map((r) => ({ ...r, current_asn: r.current_asn === null ? null : Number(r.current_asn), enrichment: readJson<Record<string, unknown>>(r.enrichment) ?? {} }));
      const hasAsnAndCountry = (r: Awaited<ReturnType<typeof readRows>>[number]) => r.geo_country !== null && r.current_asn === (worldNetwork(r.ip_address, SEED).as?.asn ?? null);
      // A session is never snapshotted while its IP still owes GreyNoise (the snapshot is frozen).
      const snapshottedEarly = async () => Number((await store.db.query<{ n: number | string }>(
        `SELECT COUNT(*) AS n FROM session_summaries s JOIN ip_inventory i ON i.ip_address = s.source_ip
         WHERE s.enrichment_at IS NOT NULL AND i.enrichment_pending LIKE '%greynoise%'`))[0].n);

      let f = startFollow(args, w.env());
      running.push(f);
      await write({ target: live, steps: [{ write: [0, 40 * EVENTS_PER_SESSION], rate: 400 }] });
      // IPs whose ASN and country are in the database, owed GreyNoise, and which GreyNoise has not answered
      // yet (its log read after the rows: no answer then means none when the row was read).
      const early = await until(async () => {
        const rows = await readRows();
        const answered = answersPerIp(w!);
        expect(await snapshottedEarly()).toBe(0);
        return rows.filter((r) => hasAsnAndCountry(r) && r.enrichment_pending === 'greynoise' && !answered.has(r.ip_address) && !('greynoise' in r.enrichment));
      }, (v) => v.length > 0, 30_000);
      expect(early.length).toBeGreaterThan(0);
      for (const r of early) expect(r.enrichment).toHaveProperty('maxmind');

      // Stop (SIGTERM) while GreyNoise is still answering; the restart picks up what is owed from the database.
      await until(() => progress(store), (v) => v.gnCached >= 10, 30_000);
      expect(await snapshottedEarly()).toBe(0);
      await stop(f);
      expect(f.child.exitCode).toBe(0);
      f = startFollow(args, w.env());
      running.push(f);
      const p = await until(() => progress(store), (v) => v.ips === 40 && v.done === 40, 60_000);
      expect(p).toEqual({ ips: 40, done: 40, gnCached: 40 });
      const unsnapshotted = async () => Number((await store.db.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM session_summaries WHERE enrichment_at IS NULL'))[0].n);
      await until(unsnapshotted, (n) => n === 0, 30_000);
      await stop(f);
      expect(f.child.exitCode).toBe(0);

      // Each row has both: the ASN and country, and the GreyNoise answer merged into the same document.
      const rows = await readRows();
      expect(rows.filter((r) => !(hasAsnAndCountry(r) && r.enrichment_pending === null && 'greynoise' in r.enrichment && 'maxmind' in r.enrichment))).toEqual([]);
      // Each IP's GreyNoise answer was paid once, across the stop and restart.
      const answers = answersPerIp(w);
      expect(answers.size).toBe(40);
      expect([...answers].filter(([, n]) => n !== 1)).toEqual([]);
      // Sessions were snapshotted with their IP's GreyNoise classification, not before it.
      const [s] = await store.db.query<{ n: number | string }>(
        `SELECT COUNT(*) AS n FROM session_summaries s JOIN ip_inventory i ON i.ip_address = s.source_ip
         WHERE s.snapshot_classification IS NULL OR s.snapshot_classification <> coalesce(i.enrichment->'greynoise'->>'classification', 'unknown')`);
      expect(Number(s.n)).toBe(0);
    }, 240_000);

    it('bad source settings: one line, exit 2, nothing followed; a source flag without --enrich is refused too', async () => {
      const url = await d.newUrl();
      const bad = await runCli('cowrie-loader', ['follow', tempDir(), '--db', url, '--enrich', '--greynoise-rate', 'abc']);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split('\n')).toEqual(['cowrie-loader: error: --greynoise-rate must be a number ≥ 0.01, got "abc"']);
      const stray = await runCli('cowrie-loader', ['follow', tempDir(), '--db', url, '--greynoise-rate', '5']);
      expect(stray.code).toBe(2);
      expect(stray.stderr.trim().split('\n')).toEqual(['cowrie-loader: error: --greynoise-rate is an enrichment setting: give --enrich with it']);
    });
  });
}
