/**
 * cowrie-report over a large database: summary rows written directly (not through the loader, to
 * save time), then `cowrie-report summary` timed as a user runs it, on SQLite and PostgreSQL.
 *
 *   npm run bench:report -- [--sessions 1000000] [--dialects sqlite,postgres] [--runs 3] [--out docs/bench-report.md]
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openStore } from '../src/store/store.js';
import { startPgCluster, type PgCluster } from './lib/pg.js';
import { machineInfo, measure } from './lib/run.js';
import { scratchDir } from './lib/refresh-world.js';
import { DAYS, populate } from './lib/report-world.js';

const { values: args } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000000' },
    dialects: { type: 'string', default: 'sqlite,postgres' },
    runs: { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});
const N = Number(args.sessions);
const RUNS = Number(args.runs);
const REPORT = path.resolve(import.meta.dirname, '../../bin/cowrie-report');
async function main(): Promise<void> {
  const out: string[] = [];
  const say = (s: string) => { out.push(s); process.stdout.write(`${s}\n`); };
  const m = machineInfo();
  say(`# cowrie-report benchmark\n`);
  say(`- command: \`npm run bench:report${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\``);
  say(`- machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}; load average at start ${m.loadAverage}`);
  say(`- data: ${N.toLocaleString('en-US')} sessions over ${DAYS} days written directly as summary rows (see bench/report.bench.ts); the window (default 7 days) holds all of them\n`);
  say('| dialect | rows written | fill (s) | `summary` table, median of runs (s) | `summary --format html` (s) | `summary --format json` (s) |');
  say('| --- | --- | ---: | ---: | ---: | ---: |');
  let pg: PgCluster | null = null;
  try {
    for (const dialect of args.dialects!.split(',')) {
      let url: string;
      if (dialect === 'postgres') {
        pg ??= await startPgCluster();
        url = pg.createDatabase(`report_bench_${Date.now()}`);
      } else url = `sqlite:${path.join(scratchDir('cowrie-report-bench-'), 'bench.sqlite')}`;
      const store = await openStore(url);
      const t0 = performance.now();
      const { rows } = await populate(store, N);
      const fill = (performance.now() - t0) / 1000;
      await store.close();
      const time = async (extra: string[]) => {
        const walls: number[] = [];
        for (let k = 0; k < RUNS; k++) {
          const r = await measure(process.execPath, [REPORT, 'summary', '--db', url, ...extra]);
          if (r.code !== 0) throw new Error(`cowrie-report failed: ${r.stderr}`);
          walls.push(r.wallSeconds);
        }
        return walls.sort((a, b) => a - b)[Math.floor(walls.length / 2)];
      };
      const table = await time([]);
      const html = await time(['--format', 'html', '--out', path.join(scratchDir('cowrie-report-out-'), 'r.html')]);
      const json = await time(['--format', 'json']);
      say(`| ${dialect} | ${Object.entries(rows).map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(', ')} | ${fill.toFixed(1)} | **${table.toFixed(2)}** | ${html.toFixed(2)} | ${json.toFixed(2)} |`);
    }
  } finally {
    pg?.stop();
  }
  say(`\nload average at end: ${machineInfo().loadAverage}`);
  if (args.out) fs.writeFileSync(args.out, `${out.join('\n')}\n`);
}

await main();
