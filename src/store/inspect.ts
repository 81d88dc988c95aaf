import { SqliteAdapter } from './dialects/sqlite.js';
import { LATEST_VERSION, MIGRATIONS } from './migrations.js';
import { TABLES } from './schema.js';
import { schemaVersion, type Store } from './store.js';

export interface DbInfo {
  url: string;
  dialect: string;
  schemaVersion: number;
  latestVersion: number;
  rowCounts: Record<string, number>;
  details: Record<string, string | number>;
}

export async function dbInfo(store: Store): Promise<DbInfo> {
  const rowCounts: Record<string, number> = {};
  for (const t of TABLES) {
    const [row] = await store.db.query<{ n: number | string }>(`SELECT count(*) AS n FROM ${t}`);
    rowCounts[t] = Number(row.n);
  }
  return {
    url: store.target.display,
    dialect: store.db.name,
    schemaVersion: await schemaVersion(store),
    latestVersion: LATEST_VERSION,
    rowCounts,
    details: await store.db.describe(),
  };
}

export interface CheckProblem {
  kind: 'schema' | 'orphan' | 'integrity';
  message: string;
}

/** Columns each table should have: the migrations applied to a scratch in-memory SQLite database. */
function expectedColumns(): Map<string, Set<string>> {
  return SqliteAdapter.scratchColumns(MIGRATIONS, ['schema_state', ...TABLES.filter((t) => t !== 'schema_state')]);
}

const ORPHAN_CHECKS: Array<[string, string]> = [
  ['files without a session', 'SELECT count(*) AS n FROM files f WHERE NOT EXISTS (SELECT 1 FROM session_summaries s WHERE s.session_id = f.session_id)'],
  ['sessions whose source IP is missing from ip_inventory', 'SELECT count(*) AS n FROM session_summaries s WHERE s.source_ip IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ip_inventory i WHERE i.ip_address = s.source_ip)'],
  ['IPs whose current ASN is missing from asn_inventory', 'SELECT count(*) AS n FROM ip_inventory i WHERE i.current_asn IS NOT NULL AND NOT EXISTS (SELECT 1 FROM asn_inventory a WHERE a.asn_number = i.current_asn)'],
  ['events whose session has no summary', 'SELECT count(*) AS n FROM raw_events e WHERE e.session_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM session_summaries s WHERE s.session_id = e.session_id)'],
];

export async function dbCheck(store: Store): Promise<CheckProblem[]> {
  const problems: CheckProblem[] = [];
  const version = await schemaVersion(store);
  if (version !== LATEST_VERSION) problems.push({ kind: 'schema', message: `schema_version is ${version}, expected ${LATEST_VERSION}` });
  const actual = new Map<string, Set<string>>();
  for (const t of await store.db.kysely.introspection.getTables()) actual.set(t.name, new Set(t.columns.map((c) => c.name)));
  for (const [table, cols] of expectedColumns()) {
    const have = actual.get(table);
    if (!have) {
      problems.push({ kind: 'schema', message: `table ${table} is missing` });
      continue;
    }
    for (const c of cols) if (!have.has(c)) problems.push({ kind: 'schema', message: `column ${table}.${c} is missing` });
  }
  if (problems.some((p) => p.kind === 'schema')) return problems;
  for (const [what, sql] of ORPHAN_CHECKS) {
    const [row] = await store.db.query<{ n: number | string }>(sql);
    if (Number(row.n) > 0) problems.push({ kind: 'orphan', message: `${Number(row.n)} ${what}` });
  }
  if (store.db.name === 'sqlite') {
    const rows = await store.db.query<{ integrity_check: string }>('PRAGMA integrity_check');
    for (const r of rows) if (r.integrity_check !== 'ok') problems.push({ kind: 'integrity', message: r.integrity_check });
  }
  return problems;
}
