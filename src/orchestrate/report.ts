/** The end-of-run table and the dry-run plan as text (escaped: paths and messages may carry attacker text). */
import { describeLimit } from '../enrich/refresh.js';
import { fmt } from '../log.js';
import { escapeControl } from '../text.js';
import type { PathCount, RunPlan } from './plan.js';
import type { OrchestrateReport } from './run.js';

const HEADER = ['sensor', 'files', 'events', 'new sessions', 'new IPs', 'dead letters', 'seconds', 'outcome'];

/** One table per run, then a line per failure, the MaxMind update and the refresh summary. */
export function reportLines(r: OrchestrateReport): string[] {
  const rows = r.sensors.map((s) => [
    escapeControl(s.name), fmt(s.files), fmt(s.events), fmt(s.new_sessions), fmt(s.new_ips), fmt(s.dead_letters), s.seconds.toFixed(1), s.outcome,
  ]);
  const widths = HEADER.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const line = (cells: string[]) => cells.map((v, c) => (c === 0 || c === cells.length - 1 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ').trimEnd();
  const out = [line(HEADER), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  for (const s of r.sensors) {
    if (s.outcome === 'failed') out.push(`${escapeControl(s.name)}: failed: ${escapeControl(s.error ?? 'unknown error')}`);
  }
  if (r.maxmind_update) out.push(`maxmind update: ${r.maxmind_update.outcome}${r.maxmind_update.error ? `: ${escapeControl(r.maxmind_update.error)}` : ''}`);
  const f = r.refresh;
  if (f.summary) out.push(escapeControl(f.summary) + (f.error ? `; ${escapeControl(f.error)}` : ''));
  else out.push(`refresh: ${f.outcome}${f.error ? `: ${escapeControl(f.error)}` : ''}`);
  return out;
}

export interface DryRunPlan {
  dry_run: true;
  config: string;
  database: string;
  concurrency: number;
  sensors: Array<{ name: string; mode: string; action: 'load' | 'skip'; why: string | null; enable_asn_inventory: boolean; paths: PathCount[] }>;
  refresh: { sessions: string; files: string; ips: string; leave_out_ips_seen_only_on: string[] } | null;
  maxmind_update: { dir: string; editions: string[]; update_after_days: number } | null;
}

export function dryRunPlan(o: {
  config: string; database: string; concurrency: number; plan: RunPlan; counts: PathCount[][];
  maxmind: { dir: string; editions: string[]; afterDays: number } | null;
}): DryRunPlan {
  const r = o.plan.refresh;
  return {
    dry_run: true, config: o.config, database: o.database, concurrency: o.concurrency,
    sensors: o.plan.sensors.map((p, i) => ({
      name: p.sensor.name, mode: p.sensor.mode, action: p.skipped ? 'skip' : 'load', why: p.skipped,
      enable_asn_inventory: p.sensor.enableAsnInventory, paths: o.counts[i],
    })),
    refresh: r ? { sessions: describeLimit(r.sessions), files: describeLimit(r.files), ips: describeLimit(r.ips), leave_out_ips_seen_only_on: r.leaveOutSensors } : null,
    maxmind_update: o.maxmind ? { dir: o.maxmind.dir, editions: o.maxmind.editions, update_after_days: o.maxmind.afterDays } : null,
  };
}

export function dryRunLines(d: DryRunPlan): string[] {
  const out = [
    `dry run of ${escapeControl(d.config)}: nothing is opened, locked, loaded or changed`,
    `database: ${escapeControl(d.database)}`,
    d.maxmind_update
      ? `maxmind update: first, when a database in ${escapeControl(d.maxmind_update.dir)} is older than ${d.maxmind_update.update_after_days} days (${d.maxmind_update.editions.join(', ')})`
      : 'maxmind update: off',
    `loads: up to ${d.concurrency} sensors at a time`,
  ];
  for (const s of d.sensors) {
    out.push(`sensor ${escapeControl(s.name)} (${s.mode}): ${s.action === 'load' ? 'load' : `skip (${s.why})`}${s.enable_asn_inventory ? '' : ', enable_asn_inventory = false'}`);
    for (const p of s.paths) out.push(`  ${escapeControl(p.path)}: ${p.missing ? 'nothing there (missing, or no Cowrie JSON logs)' : `${fmt(p.files)} file(s)`}`);
  }
  const r = d.refresh;
  out.push(r
    ? `refresh: cowrie-enrich refresh --ips ${r.ips === 'all' ? 0 : r.ips}${r.sessions === '0' ? '' : ` --sessions ${r.sessions}`}${r.files === '0' ? '' : ` --files ${r.files}`}`
      + (r.leave_out_ips_seen_only_on.length ? `, leaving out IPs seen only on ${r.leave_out_ips_seen_only_on.join(', ')}` : '')
    : 'refresh: skipped (--skip-enrich)');
  return out;
}
