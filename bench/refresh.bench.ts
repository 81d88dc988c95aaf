/**
 * `npm run bench:refresh`: `cowrie-enrich refresh` against the simulators, set like the user
 * guide's world (Team Cymru ≈150 ms per bulk batch, GreyNoise 10 requests/s), on SQLite and
 * PostgreSQL. Prints per run the time of each pass, the wall time, and wall ÷ the bound set by
 * the slowest source (GreyNoise: routable IPs ÷ rate); a second run within the TTLs (no network
 * call expected); the local work alone (`--offline`); and 200,000 session snapshots.
 *
 * Env: BENCH_DIALECTS=sqlite,postgres (default both); COWRIE_BENCH_PG_URL (else a throwaway
 * cluster); BENCH_QUICK=1 skips the 100-second N=1,000 runs;
 * BENCH_ONLY=online,latency,offline,sessions picks parts; BENCH_GN_LATENCY_MS (default 0).
 * `--out FILE` also writes the results as Markdown.
 */
import fs from 'node:fs';
import path from 'node:path';
import Pg from 'pg';
import { isGreyNoiseRoutable } from '../src/enrich/sources/greynoise.js';
import { writeWorldDatabases } from '../src/sim/mmdb-world.js';
import { openStore, type Store } from '../src/store/store.js';
import { startPgCluster, type PgCluster } from './lib/pg.js';
import { benchConfig, benchIps, GN_KEY, insertIps, insertSessions, machine, scratchDir, startSims, timeRefresh, VT_KEY, type Sims } from './lib/refresh-world.js';

const SEED = 7;
const CYMRU_LATENCY_MS = 150;
const GN_LATENCY_MS = Number(process.env.BENCH_GN_LATENCY_MS ?? 0);
const dialects = (process.env.BENCH_DIALECTS ?? 'sqlite,postgres').split(',') as Array<'sqlite' | 'postgres'>;
const quick = process.env.BENCH_QUICK === '1';
const only = new Set((process.env.BENCH_ONLY ?? 'online,latency,offline,sessions').split(','));
const outFile = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1] : null;

const md: string[] = [];
const say = (line = '') => {
  process.stdout.write(`${line}\n`);
  md.push(line);
};
const s = (x: number) => x.toFixed(2);

async function main(): Promise<void> {
  const scratch = scratchDir('cowrie-bench-refresh-');
  const mmdbDir = path.join(scratch, 'maxmind');
  await writeWorldDatabases({ dir: mmdbDir, seed: SEED });
  let pg: PgCluster | null = null;
  let pgUrl = process.env.COWRIE_BENCH_PG_URL ?? '';
  if (dialects.includes('postgres') && !pgUrl) {
    pg = await startPgCluster();
    pgUrl = pg.url;
  }
  let dbNo = 0;
  const newUrl = async (d: 'sqlite' | 'postgres') => {
    const name = `bench_refresh_${process.pid}_${++dbNo}`;
    if (d === 'sqlite') return `sqlite:${path.join(scratch, `${name}.sqlite`)}`;
    if (pg) return pg.createDatabase(name);
    // COWRIE_BENCH_PG_URL: an admin URL on a server the bench may create databases on.
    const admin = new Pg.Client({ connectionString: pgUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    const u = new URL(pgUrl);
    u.pathname = `/${name}`;
    return u.toString();
  };
  const statusDir = path.join(scratch, 'status');

  say('# cowrie-enrich refresh benchmark');
  say();
  say(`Machine: ${machine()}${pg ? `; PostgreSQL ${pg.version} (throwaway cluster, fsync off)` : ''}`);
  say('Load: the one-minute load average when each run started (2 cores; other work on the machine slows the runs).');
  say(`World: Team Cymru simulator ${CYMRU_LATENCY_MS} ms per bulk batch (batches of 500, 2 connections); GreyNoise simulator ${GN_LATENCY_MS} ms per answer; both on 127.0.0.1 in a separate process.`);
  say();

  try {
    if (only.has('online')) {
    say('## Online runs (MaxMind → Cymru → GreyNoise + merge), then a second run within the TTLs');
    say();
    say('| DB | N IPs | GreyNoise rate | pass 1 s | pass 2 s | pass 3 s | wall s | bound s | wall ÷ bound | GN requests (max/s, 429s) | Cymru conns | 2nd run wall s | 2nd run requests (GN, Cymru) | load |');
    say('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    const scenarios = [
      { n: 100, rate: 10 },
      ...(quick ? [] : [{ n: 1000, rate: 10 }]),
      { n: 10_000, rate: 1000 },
    ];
    for (const d of dialects) {
      for (const sc of scenarios) await onlineRun(d, sc.n, sc.rate);
    }
    say();
    say('Bound = the slowest source alone: GreyNoise routable IPs ÷ rate, or Cymru (batches ÷ 2 connections × 150 ms, plus one AS-details batch), whichever is larger. Target ≤ 1.10.');
    say();
    }
    if (only.has('latency')) {
      say('## GreyNoise answer latency');
      say();
      say('The GreyNoise client\'s limiter holds a slot from sending until the answer arrives and counts the window from then, so at latency L the rate is at most rate ÷ (1 + L s): expect wall ÷ bound ≈ (1 + L) × the zero-latency ratio.');
      say();
      say('| DB | N IPs | GreyNoise rate, latency | pass 1 s | pass 2 s | pass 3 s | wall s | bound s | wall ÷ bound | GN requests (max/s, 429s) | Cymru conns | 2nd run wall s | 2nd run requests (GN, Cymru) | load |');
      say('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
      for (const lat of [100, 250]) await onlineRun(dialects[0], 100, 10, lat);
      say();
    }
    if (only.has('offline')) {

    say('## Local work alone (`--offline`: MaxMind + merge + commit, no network)');
    say();
    say('| DB | N IPs | --commit-interval | pass 1 s | pass 3 s | wall s | IPs/s | target | CPU s (this process) | load |');
    say('|---|---|---|---|---|---|---|---|---|---|');
    for (const d of dialects) for (const ci of [100, 1000]) await offlineRun(d, 50_000, ci);
    say();
    }
    if (only.has('sessions')) {

    say('## Session snapshots (`--sessions all`, default --commit-interval 100)');
    say();
    say('| DB | sessions | wall s | sessions/s | target | load |');
    say('|---|---|---|---|---|---|');
    for (const d of dialects) await sessionsRun(d, 20_000, 10);
    say();
    }
  } finally {
    pg?.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  if (outFile) fs.writeFileSync(outFile, `${md.join('\n')}\n`);

  async function onlineRun(d: 'sqlite' | 'postgres', n: number, rate: number, gnLatencyMs = GN_LATENCY_MS): Promise<void> {
    const sims: Sims = await startSims({
      cymru: { seed: SEED, latencyMsPerBatch: CYMRU_LATENCY_MS },
      greynoise: { seed: SEED, apiKey: GN_KEY, ratePerSecond: rate, latencyMs: gnLatencyMs },
      virustotal: { seed: SEED, apiKey: VT_KEY },
    });
    const url = await newUrl(d);
    const store: Store = await openStore(url);
    try {
      const ips = benchIps(n, SEED);
      await insertIps(store, ips);
      const config = benchConfig(url, sims, { mmdbDir, greynoiseRate: rate, statusDir });
      const first = await timeRefresh(store, config, { ips: 'all' });
      const st1 = await sims.stats();
      const r = first.result.ips!;
      const routable = ips.filter(isGreyNoiseRoutable).length;
      const cymruBatches = Math.ceil(r.needCymru / 500);
      const bound = Math.max(routable / rate, (Math.ceil(cymruBatches / 2) + 1) * CYMRU_LATENCY_MS / 1000);
      // Stale again by age, fresh in every cache: the second run must not touch the network.
      await store.db.run('UPDATE ip_inventory SET enrichment_updated_at = ?', [new Date(Date.now() - 31 * 86_400_000).toISOString().replace('Z', '000Z')]);
      const second = await timeRefresh(store, config, { ips: 'all' });
      const st2 = await sims.stats();
      if (r.errors || second.result.ips!.errors) process.stderr.write(`warning: ${r.errors} + ${second.result.ips!.errors} IP errors\n${first.lines.filter((l) => !l.startsWith('[INFO]')).join('\n')}\n`);
      say(`| ${d} | ${n.toLocaleString('en-US')} | ${rate}/s${gnLatencyMs ? `, ${gnLatencyMs} ms` : ''} | ${s(r.seconds.pass1)} | ${s(r.seconds.pass2)} | ${s(r.seconds.pass3)} | ${s(first.wall)} | ${s(bound)} | **${(first.wall / bound).toFixed(3)}** | ${st1.greynoiseRequests} (${st1.greynoiseMaxPerSecond}, ${st1.greynoise429}) | ${st1.cymruConnections} | ${s(second.wall)} | ${st2.greynoiseRequests - st1.greynoiseRequests}, ${st2.cymruConnections - st1.cymruConnections} | ${first.load.toFixed(1)} |`);
    } finally {
      await store.close();
      await sims.stop();
    }
  }

  async function offlineRun(d: 'sqlite' | 'postgres', n: number, commitInterval: number): Promise<void> {
    const url = await newUrl(d);
    const store = await openStore(url);
    try {
      await insertIps(store, benchIps(n, SEED));
      const config = benchConfig(url, null, { mmdbDir, offline: true, statusDir, commitInterval });
      const t = await timeRefresh(store, config, { ips: 'all' });
      const r = t.result.ips!;
      const target = d === 'sqlite' ? 20_000 : 10_000;
      const perSec = n / t.wall;
      say(`| ${d} | ${n.toLocaleString('en-US')} | ${commitInterval}${commitInterval === 100 ? ' (default)' : ''} | ${s(r.seconds.pass1)} | ${s(r.seconds.pass3)} | ${s(t.wall)} | **${Math.round(perSec).toLocaleString('en-US')}** | ≥ ${target.toLocaleString('en-US')} ${perSec >= target ? 'met' : 'MISSED'} | ${s(t.cpu)} | ${t.load.toFixed(1)} |`);
    } finally {
      await store.close();
    }
  }

  async function sessionsRun(d: 'sqlite' | 'postgres', ipCount: number, perIp: number): Promise<void> {
    const url = await newUrl(d);
    const store = await openStore(url);
    try {
      const ips = benchIps(ipCount, SEED);
      await insertIps(store, ips);
      // IPs enriched first (offline); sessions loaded after, so none is snapshotted yet.
      await timeRefresh(store, benchConfig(url, null, { mmdbDir, offline: true, statusDir }), { ips: 'all' });
      const total = await insertSessions(store, ips, perIp);
      const t = await timeRefresh(store, benchConfig(url, null, { mmdbDir, offline: true, statusDir }), { sessions: 'all' });
      if (t.result.sessions !== total) throw new Error(`snapshotted ${t.result.sessions} of ${total} sessions`);
      say(`| ${d} | ${total.toLocaleString('en-US')} | ${s(t.wall)} | ${Math.round(total / t.wall).toLocaleString('en-US')} | ${d === 'sqlite' ? `< 30 s ${t.wall < 30 ? 'met' : 'MISSED'}` : 'reported'} | ${t.load.toFixed(1)} |`);
    } finally {
      await store.close();
    }
  }
}

await main();
