/**
 * Aggregate ingest rate with 1, 2 and 4 cowrie-loader processes (one sensor each, the same
 * amount of logs each) writing into one PostgreSQL at once — docs/SCALING.md. Each round loads
 * into a fresh database. The load average is recorded: the machine may be shared.
 *
 *   npm run build && node dist/bench/parallel-loaders.bench.js [sessions-per-sensor]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateLogs } from '../src/sim/log-generator.js';
import { startPgCluster } from './lib/pg.js';
import { measure } from './lib/run.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const sessionsPerSensor = Number(process.argv[2] ?? 5000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cowrie-bench-parallel-'));
const cluster = await startPgCluster();
try {
  const sets: Array<{ path: string; events: number }> = [];
  for (let k = 0; k < 4; k++) {
    // One sensor per set, its own seed: four honeypots of the same size whose attackers differ.
    const out = path.join(dir, `sensor-${k + 1}`);
    const r = await generateLogs({ outDir: out, sessions: sessionsPerSensor, ips: Math.ceil(sessionsPerSensor / 4), sensors: 1, days: 3, seed: 100 + k });
    sets.push({ path: out, events: r.events });
  }
  console.log(`PostgreSQL: ${cluster.version}; ${os.cpus().length} CPUs; ${sessionsPerSensor} sessions (~${sets[0].events} events) per sensor`);
  console.log('| loaders | events | wall s | aggregate events/s | per loader events/s | load average before (1/5/15 min) |');
  console.log('|---:|---:|---:|---:|---:|---|');
  for (const n of [1, 2, 4]) {
    const url = cluster.createDatabase(`bench_parallel_${n}`);
    // Schema first, so the round measures loading only.
    await measure(path.join(ROOT, 'bin', 'cowrie-db'), ['migrate', '--db', url]);
    const load = os.loadavg().map((x) => x.toFixed(1)).join(' / ');
    const started = process.hrtime.bigint();
    const runs = await Promise.all(sets.slice(0, n).map((s, k) => measure(path.join(ROOT, 'bin', 'cowrie-loader'), ['bulk', s.path, '--db', url, '--sensor', `sensor-${k + 1}`, '-q'], { ...process.env, COWRIE_CONFIG: '' })));
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    const failed = runs.find((r) => r.code !== 0);
    if (failed) throw new Error(`a loader failed: ${failed.stderr}`);
    const events = sets.slice(0, n).reduce((a, s) => a + s.events, 0);
    const per = runs.map((r, k) => sets[k].events / r.wallSeconds);
    console.log(`| ${n} | ${events.toLocaleString('en-US')} | ${wall.toFixed(1)} | ${Math.round(events / wall).toLocaleString('en-US')} | ${per.map((x) => Math.round(x).toLocaleString('en-US')).join(', ')} | ${load} |`);
  }
} finally {
  cluster.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
