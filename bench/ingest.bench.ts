/**
 * Ingest benchmark: generate ≥ 1 million Cowrie events, then time `cowrie-loader bulk` (first
 * load) and `cowrie-loader delta` (re-run over unchanged files) on SQLite and, when server
 * binaries exist, on a throwaway PostgreSQL cluster. Each load runs as its own process, measured
 * from outside (wall time, CPU, peak RSS); rates are also given as a ratio to a baseline that
 * only reads the same files with readline + JSON.parse, so figures compare across machines.
 *
 *   npm run bench:ingest -- [--sessions 135000] [--dialects sqlite,postgres] [--doc docs/bench-ingest.md] [--logs DIR]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { generateLogs } from '../src/sim/log-generator.js';
import { findPgBin, startPgCluster, type PgCluster } from './lib/pg.js';
import { machineInfo, measure, type Measured } from './lib/run.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const LOADER = path.join(ROOT, 'dist/src/cli/cowrie-loader.js');

const { values: args } = parseArgs({
  options: {
    sessions: { type: 'string', default: '135000' },
    dialects: { type: 'string', default: 'sqlite,postgres' },
    doc: { type: 'string' },
    logs: { type: 'string' },
    'batch-size': { type: 'string' },
  },
});

interface Row {
  dialect: string;
  phase: 'first load' | 'delta re-run';
  events: number;
  m: Measured;
  loaderRate: number;
}

const num = (s: string | undefined) => Number((s ?? '0').replace(/,/g, ''));

function summaryFigures(stdout: string): { eventsRead: number; loaderRate: number } {
  const read = /events_read=([\d,]+)/.exec(stdout);
  const rate = /events_per_s=([\d,]+)/.exec(stdout);
  if (!read) throw new Error(`no summary line in loader output:\n${stdout}`);
  return { eventsRead: num(read[1]), loaderRate: num(rate?.[1]) };
}

/** The floor any loader pays: read every line and JSON.parse it, nothing else. */
async function baseline(files: string[]): Promise<{ lines: number; seconds: number }> {
  const t = process.hrtime.bigint();
  let lines = 0;
  for (const f of files) {
    const rl = readline.createInterface({ input: fs.createReadStream(f), crlfDelay: Infinity });
    for await (const line of rl) {
      if (!line) continue;
      try { JSON.parse(line); } catch { /* counted all the same */ }
      lines++;
    }
  }
  return { lines, seconds: Number(process.hrtime.bigint() - t) / 1e9 };
}

async function loadRun(dialect: string, mode: 'bulk' | 'delta', url: string, logs: string): Promise<Row> {
  const extra = args['batch-size'] ? ['--batch-size', args['batch-size']] : [];
  const m = await measure(process.execPath, [LOADER, mode, logs, '--db', url, ...extra]);
  if (m.code !== 0) throw new Error(`loader ${mode} on ${dialect} exited ${m.code}:\n${m.stderr}`);
  const { eventsRead, loaderRate } = summaryFigures(m.stdout);
  return { dialect, phase: mode === 'bulk' ? 'first load' : 'delta re-run', events: eventsRead, m, loaderRate };
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

const NOTES_MARK = '<!-- notes: everything below is kept when the benchmark rewrites this file -->';

/** The figures come from this run; hand-written notes after the marker survive a rewrite. */
function writeDoc(file: string, lines: string[]): void {
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const at = old.indexOf(NOTES_MARK);
  const notes = at === -1 ? `${NOTES_MARK}\n` : old.slice(at);
  fs.writeFileSync(file, `${lines.join('\n')}\n\n${notes}`);
}

async function main(): Promise<void> {
  if (!fs.existsSync(LOADER)) throw new Error(`${LOADER} is missing: run npm run build first`);
  const machine = machineInfo();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cowrie-bench-ingest-'));
  const logs = args.logs ?? path.join(work, 'logs');
  const sessions = Number(args.sessions);
  const lines: string[] = [];
  const say = (l = '') => { lines.push(l); process.stdout.write(`${l}\n`); };
  let cluster: PgCluster | null = null;
  try {
    let t = Date.now();
    if (!args.logs) {
      const g = await generateLogs({ outDir: logs, sessions, ips: Math.max(1, Math.round(sessions / 13)), sensors: 3, days: 7, seed: 42 });
      process.stderr.write(`generated ${fmtInt(g.events)} events in ${g.files} files (${((Date.now() - t) / 1000).toFixed(1)} s)\n`);
    }
    const files = fs.readdirSync(logs, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)).sort();
    const bytes = files.reduce((a, f) => a + fs.statSync(f).size, 0);
    const base = await baseline(files);
    const baseRate = base.lines / base.seconds;
    if (base.lines < 1_000_000 && !args.logs) process.stderr.write(`warning: only ${fmtInt(base.lines)} events; use --sessions to reach 1 million\n`);

    const rows: Row[] = [];
    const wanted = String(args.dialects).split(',');
    if (wanted.includes('sqlite')) {
      const url = `sqlite:${path.join(work, 'bench.sqlite')}`;
      rows.push(await loadRun('sqlite', 'bulk', url, logs));
      rows.push(await loadRun('sqlite', 'delta', url, logs));
    }
    let pgVersion = '';
    if (wanted.includes('postgres')) {
      if (!findPgBin()) process.stderr.write('PostgreSQL server binaries not found: PostgreSQL skipped\n');
      else {
        cluster = await startPgCluster();
        pgVersion = cluster.version;
        const url = cluster.createDatabase('bench_ingest');
        rows.push(await loadRun('postgres', 'bulk', url, logs));
        rows.push(await loadRun('postgres', 'delta', url, logs));
      }
    }

    say(`# Ingest benchmark`);
    say();
    say(`- command: \`npm run bench:ingest${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``);
    say(`- machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB RAM, ${machine.os}; load average at start ${machine.loadAverage}`);
    say(`- Node ${machine.node}${pgVersion ? `; PostgreSQL ${pgVersion} (throwaway cluster: fsync, synchronous_commit and full_page_writes off)` : ''}; SQLite via better-sqlite3 (WAL)`);
    say(`- input: ${fmtInt(base.lines)} lines in ${files.length} plain files, ${(bytes / 2 ** 20).toFixed(0)} MiB (cowrie-sim logs --sessions ${sessions} --sensors 3 --days 7 --seed 42)`);
    say(`- baseline (readline + JSON.parse, in process): ${fmtInt(baseRate)} lines/s (${base.seconds.toFixed(1)} s)`);
    say();
    say('| database | run | events read | wall s | events/s (wall) | events/s (loader) | × baseline | CPU s | peak RSS MiB |');
    say('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) {
      const rate = r.phase === 'first load' ? r.events / r.m.wallSeconds : NaN;
      say(`| ${r.dialect} | ${r.phase} | ${fmtInt(r.events)} | ${r.m.wallSeconds.toFixed(2)} | ${Number.isNaN(rate) ? '–' : fmtInt(rate)} | ${r.phase === 'first load' ? fmtInt(r.loaderRate) : '–'} | ${Number.isNaN(rate) ? '–' : (rate / baseRate).toFixed(2)} | ${r.m.cpuSeconds?.toFixed(1) ?? '?'} | ${r.m.peakRssMiB?.toFixed(0) ?? '?'} |`);
    }
    say();
    for (const d of new Set(rows.map((r) => r.dialect))) {
      const first = rows.find((r) => r.dialect === d && r.phase === 'first load')!;
      const delta = rows.find((r) => r.dialect === d && r.phase === 'delta re-run')!;
      say(`- ${d}: delta re-run over unchanged files is ${(first.m.wallSeconds / delta.m.wallSeconds).toFixed(0)}× faster than the first load (events read: ${fmtInt(delta.events)})`);
    }
    if (args.doc) writeDoc(path.resolve(args.doc), lines);
  } finally {
    cluster?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
