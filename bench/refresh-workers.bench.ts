/**
 * `npm run bench:workers`: 1, 2 and 4 `cowrie-enrich refresh` processes on one PostgreSQL, all
 * started together on the same 5,000 IPs, against the simulators (in a process of their own)
 * with GreyNoise at 200 requests/s for all workers together — docs/SCALING.md. Each round uses a
 * fresh database and fresh simulators. Reported: the wall time from the first start to the last
 * exit, each worker's, GreyNoise's requests (and distinct IPs asked), the most GreyNoise requests
 * that arrived in any one second, the most Cymru connections open at once, and the load average
 * (the machine may be shared).
 *
 *   npm run bench:workers [-- N-IPS]
 *
 * Env: BENCH_SPLIT=ips (default: each worker `--ips N/workers`, the workers claim disjoint IPs)
 * or list (each worker its own `--ip` list, for builds without IP claims); COWRIE_BENCH_PG_URL (an
 * admin URL on a server the bench may create databases on; default a throwaway cluster);
 * BENCH_GN_LATENCY_MS (default 0). `--out FILE` also writes the table as Markdown.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Pg from 'pg';
import { isGreyNoiseRoutable } from '../src/enrich/sources/greynoise.js';
import { writeWorldDatabases } from '../src/sim/mmdb-world.js';
import { openStore } from '../src/store/store.js';
import { startPgCluster, type PgCluster } from './lib/pg.js';
import { benchIps, GN_KEY, insertIps, machine, scratchDir, startSims, VT_KEY } from './lib/refresh-world.js';
import { measure } from './lib/run.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SEED = 7;
const GN_RATE = 200;
const CYMRU_LATENCY_MS = 150;
const GN_LATENCY_MS = Number(process.env.BENCH_GN_LATENCY_MS ?? 0);
const split = process.env.BENCH_SPLIT === 'list' ? 'list' : 'ips';
const args = process.argv.slice(2);
const outFile = args.includes('--out') ? args[args.indexOf('--out') + 1] : null;
const n = Number(args.find((a, i) => /^\d+$/.test(a) && args[i - 1] !== '--out') ?? 5000);

const md: string[] = [];
const say = (line = '') => {
  process.stdout.write(`${line}\n`);
  md.push(line);
};
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' / ');

const scratch = scratchDir('cowrie-bench-workers-');
const mmdbDir = path.join(scratch, 'maxmind');
await writeWorldDatabases({ dir: mmdbDir, seed: SEED });
let cluster: PgCluster | null = null;
const adminUrl = process.env.COWRIE_BENCH_PG_URL ?? (cluster = await startPgCluster()).url;

async function newDatabase(name: string): Promise<string> {
  if (cluster) return cluster.createDatabase(name);
  const admin = new Pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

try {
  const ips = benchIps(n, SEED);
  const routable = ips.filter(isGreyNoiseRoutable).length;
  say('# cowrie-enrich refresh: N workers on one PostgreSQL');
  say();
  say(`Machine: ${machine()}${cluster ? `; PostgreSQL ${cluster.version} (throwaway cluster, fsync off)` : ''}`);
  say(`World: ${n.toLocaleString('en-US')} IPs (${routable.toLocaleString('en-US')} GreyNoise-routable); GreyNoise simulator at ${GN_RATE} requests/s (429 beyond), ${GN_LATENCY_MS} ms per answer; Team Cymru simulator ${CYMRU_LATENCY_MS} ms per bulk batch; both on 127.0.0.1 in a process of their own.`);
  say(`Workers: \`cowrie-enrich refresh --greynoise-rate ${GN_RATE}\` each (the rate is for all of them together), ${split === 'ips' ? '`--ips N/workers` each' : 'each its own `--ip` list (N/workers IPs)'}, all started at once. Bound: routable IPs ÷ ${GN_RATE}/s = ${(routable / GN_RATE).toFixed(1)} s.`);
  say();
  say('| workers | wall s | each worker s | IPs enriched | GN requests (distinct IPs) | GN max in any 1 s | GN 429s | Cymru batches (most open at once) | load before (1/5/15 min) | load after |');
  say('|---:|---:|---|---:|---:|---:|---:|---:|---|---|');
  for (const workers of [1, 2, 4]) {
    const url = await newDatabase(`bench_workers_${process.pid}_${workers}`);
    const store = await openStore(url);
    try {
      await insertIps(store, ips);
    } finally {
      await store.close();
    }
    const sims = await startSims({
      cymru: { seed: SEED, latencyMsPerBatch: CYMRU_LATENCY_MS },
      greynoise: { seed: SEED, apiKey: GN_KEY, ratePerSecond: GN_RATE, latencyMs: GN_LATENCY_MS },
      virustotal: { seed: SEED, apiKey: VT_KEY },
    });
    try {
      const per = Math.ceil(ips.length / workers);
      const flags = (k: number) => [
        'refresh', '--db', url, '--maxmind-dir', mmdbDir, '--status-dir', path.join(scratch, `status-${workers}-${k}`),
        '--cymru-host', sims.ready.cymru.host, '--cymru-port', String(sims.ready.cymru.port),
        '--greynoise-url', sims.ready.greynoiseUrl, '--greynoise-rate', String(GN_RATE), '--virustotal-url', sims.ready.virustotalUrl,
        ...(split === 'ips' ? ['--ips', String(per)] : ips.slice(k * per, (k + 1) * per).flatMap((ip) => ['--ip', ip])),
      ];
      const env = { ...process.env, COWRIE_CONFIG: '', GREYNOISE_API_KEY: GN_KEY, VT_API_KEY: VT_KEY };
      const before = load();
      const started = process.hrtime.bigint();
      const runs = await Promise.all(Array.from({ length: workers }, (_, k) => measure(path.join(ROOT, 'bin', 'cowrie-enrich'), flags(k), env)));
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      const failed = runs.find((r) => r.code !== 0);
      if (failed) throw new Error(`a worker failed (exit ${failed.code}): ${failed.stderr.slice(-2000)}`);
      const st = await sims.stats();
      const check = await openStore(url);
      let enriched: number;
      try {
        enriched = Number((await check.db.query<{ n: string }>('SELECT count(*) AS n FROM ip_inventory WHERE enrichment_updated_at IS NOT NULL'))[0].n);
      } finally {
        await check.close();
      }
      say(`| ${workers} | ${wall.toFixed(1)} | ${runs.map((r) => r.wallSeconds.toFixed(1)).join(', ')} | ${enriched.toLocaleString('en-US')} | ${st.greynoiseRequests.toLocaleString('en-US')} (${st.greynoiseDistinctIps.toLocaleString('en-US')}) | ${st.greynoiseMaxPerSecond} | ${st.greynoise429} | ${st.cymruBatches} (${st.cymruMaxConcurrent}) | ${before} | ${load()} |`);
    } finally {
      await sims.stop();
    }
  }
  say();
} finally {
  cluster?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
}
if (outFile) fs.writeFileSync(outFile, `${md.join('\n')}\n`);
