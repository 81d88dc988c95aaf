/**
 * Where a report's time goes: runs one `cowrie-report` view in-process and times every SQL
 * statement it sends (with `--explain`, each statement's plan too). For finding slow queries, not
 * for figures (those come from report.bench.ts, which times the command as a user runs it).
 *
 *   npm run build && node dist/bench/report-profile.js --db URL [--view summary] [--format table] [--explain]
 *   node dist/bench/report-profile.js --fill 200000 --db URL     # write the benchmark's database first
 */
import { parseArgs } from 'node:util';
import type { ReportDb } from '../src/report/data.js';
import { runReport } from '../src/report/report.js';
import type { ViewName } from '../src/report/views.js';
import { openStore } from '../src/store/store.js';
import { populate } from './lib/report-world.js';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string' },
    fill: { type: 'string' },
    view: { type: 'string', default: 'summary' },
    format: { type: 'string', default: 'table' },
    explain: { type: 'boolean', default: false },
  },
});
if (!args.db) throw new Error('--db URL is required');

const store = await openStore(args.db);
try {
  if (args.fill) {
    const t0 = performance.now();
    const { rows } = await populate(store, Number(args.fill));
    process.stdout.write(`filled ${JSON.stringify(rows)} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const timings: Array<{ ms: number; rows: number; sql: string; params: readonly unknown[] }> = [];
  const db = store.db;
  // Statements run one at a time here, so each time is its own (the report runs some together).
  let queue: Promise<unknown> = Promise.resolve();
  const timed: ReportDb = {
    query<R>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
      const next = queue.then(async () => {
        const t0 = performance.now();
        const rows = await db.query<R>(sql, params);
        timings.push({ ms: performance.now() - t0, rows: rows.length, sql, params });
        return rows;
      });
      queue = next.catch(() => {});
      return next;
    },
    run: (sql, params) => db.run(sql, params),
    binaryText: (expr) => db.binaryText(expr),
    jsonText: (expr, path) => db.jsonText(expr, path),
    types: db.types,
  };
  const options = {
    view: args.view as ViewName, format: args.format!, limit: 10, ips: {}, blocklist: { scanners: 'include' as const, maxAgeMs: 30 * 86_400_000 },
    setName: 'cowrie_blocklist', color: false,
  };
  await runReport(timed, options);
  const t0 = performance.now();
  const { text } = await runReport(db, options);
  const total = performance.now() - t0;
  const inSql = timings.reduce((a, t) => a + t.ms, 0);
  process.stdout.write(`${args.view} --format ${args.format}: ${total.toFixed(0)} ms in-process (statements one at a time: ${inSql.toFixed(0)} ms in ${timings.length}, output ${text.length} chars)\n\n`);
  const oneLine = (sql: string) => sql.replace(/\s+/g, ' ').trim();
  for (const t of [...timings].sort((a, b) => b.ms - a.ms).slice(0, 15)) {
    process.stdout.write(`${t.ms.toFixed(0).padStart(6)} ms ${String(t.rows).padStart(7)} rows  ${oneLine(t.sql).slice(0, 160)}\n`);
    if (args.explain) {
      const plan = db.name === 'sqlite'
        ? (await db.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${t.sql}`, t.params)).map((r) => `    ${r.detail}`)
        : (await db.query<Record<string, string>>(`EXPLAIN (ANALYZE, BUFFERS) ${t.sql}`, t.params)).map((r) => `    ${r["QUERY PLAN"].slice(0, 200)}`);
      process.stdout.write(`${plan.join('\n')}\n\n`);
    }
  }
} finally {
  await store.close();
}
