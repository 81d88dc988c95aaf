/**
 * Ingest benchmark: generate ≥ 1 million Cowrie events, then time `cowrie-loader bulk` (first
 * load, the crash-safe default), `cowrie-loader bulk --fast` (first load into an empty database)
 * and `cowrie-loader delta` (re-run over unchanged files) on SQLite and, when server binaries
 * exist, on a throwaway PostgreSQL cluster. Each load runs as its own process, measured from
 * outside (wall time, CPU, peak RSS). Each first load is also given as a ratio to the parse
 * ceiling — readline + JSON.parse of the same files, measured just before that load — so figures
 * compare across machines and survive a busy machine better than absolute rates.
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

type Phase = 'first load' | 'first load --fast' | 'delta re-run';

interface Row {
  dialect: string;
  phase: Phase;
  events: number;
  m: Measured;
  loaderRate: number;
  /** Parse ceiling (lines/s) measured just before this run. */
  ceiling: number;
  loadAverage: string;
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

async function loadRun(dialect: string, phase: Phase, url: string, logs: string, files: string[]): Promise<Row> {
  const extra = args['batch-size'] ? ['--batch-size', args['batch-size']] : [];
  const argv = phase === 'delta re-run' ? ['delta'] : phase === 'first load --fast' ? ['bulk', '--fast'] : ['bulk'];
  const base = phase === 'delta re-run' ? null : await baseline(files);
  const loadAverage = os.loadavg()[0].toFixed(1);
  const m = await measure(process.execPath, [LOADER, ...argv, logs, '--db', url, ...extra]);
  if (m.code !== 0) throw new Error(`loader ${argv.join(' ')} on ${dialect} exited ${m.code}:\n${m.stderr}`);
  const { eventsRead, loaderRate } = summaryFigures(m.stdout);
  return { dialect, phase, events: eventsRead, m, loaderRate, ceiling: base ? base.lines / base.seconds : NaN, loadAverage };
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
    const runAll = async (dialect: string, newUrl: (name: string) => string) => {
      const url = newUrl('bench');
      rows.push(await loadRun(dialect, 'first load', url, logs, files));
      rows.push(await loadRun(dialect, 'delta re-run', url, logs, files));
      rows.push(await loadRun(dialect, 'first load --fast', newUrl('bench_fast'), logs, files));
    };
    if (wanted.includes('sqlite')) await runAll('sqlite', (name) => `sqlite:${path.join(work, `${name}.sqlite`)}`);
    let pgVersion = '';
    if (wanted.includes('postgres')) {
      if (!findPgBin()) process.stderr.write('PostgreSQL server binaries not found: PostgreSQL skipped\n');
      else {
        cluster = await startPgCluster();
        pgVersion = cluster.version;
        const c = cluster;
        await runAll('postgres', (name) => c.createDatabase(`${name}_ingest`));
      }
    }

    say(`# Ingest benchmark`);
    say();
    say(`- command: \`npm run bench:ingest${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``);
    say(`- machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB RAM, ${machine.os}; load average at start ${machine.loadAverage}`);
    say(`- Node ${machine.node}${pgVersion ? `; PostgreSQL ${pgVersion} (throwaway cluster: fsync, synchronous_commit and full_page_writes off)` : ''}; SQLite via better-sqlite3 (WAL, synchronous=NORMAL; --fast: journal off)`);
    say(`- input: ${fmtInt(base.lines)} lines in ${files.length} plain files, ${(bytes / 2 ** 20).toFixed(0)} MiB (cowrie-sim logs --sessions ${sessions} --sensors 3 --days 7 --seed 42)`);
    say(`- parse ceiling (readline + JSON.parse, in process) at start: ${fmtInt(baseRate)} lines/s (${base.seconds.toFixed(1)} s); each first load's ratio uses the ceiling measured just before it`);
    say();
    say('| database | run | events read | wall s | events/s (wall) | parse ceiling lines/s | ratio to ceiling | CPU s | peak RSS MiB | load avg |');
    say('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) {
      const first = r.phase !== 'delta re-run';
      const rate = r.events / r.m.wallSeconds;
      say(`| ${r.dialect} | ${r.phase} | ${fmtInt(r.events)} | ${r.m.wallSeconds.toFixed(2)} | ${first ? fmtInt(rate) : '–'} | ${first ? fmtInt(r.ceiling) : '–'} | ${first ? (rate / r.ceiling).toFixed(3) : '–'} | ${r.m.cpuSeconds?.toFixed(1) ?? '?'} | ${r.m.peakRssMiB?.toFixed(0) ?? '?'} | ${r.loadAverage} |`);
    }
    say();
    for (const d of new Set(rows.map((r) => r.dialect))) {
      const first = rows.find((r) => r.dialect === d && r.phase === 'first load')!;
      const fast = rows.find((r) => r.dialect === d && r.phase === 'first load --fast')!;
      const delta = rows.find((r) => r.dialect === d && r.phase === 'delta re-run')!;
      say(`- ${d}: --fast takes ${(fast.m.wallSeconds / first.m.wallSeconds).toFixed(2)}× the default's wall time; the delta re-run over unchanged files is ${(first.m.wallSeconds / delta.m.wallSeconds).toFixed(0)}× faster than the first load (events read: ${fmtInt(delta.events)})`);
    }
    if (args.doc) writeDoc(path.resolve(args.doc), lines);
  } finally {
    cluster?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
