/** What a cowrie-orchestrate run will do, decided from the config before anything is touched. */
import type { Config, SensorConfig } from '../config/config.js';
import type { Limit } from '../enrich/refresh.js';
import { UsageError } from '../errors.js';
import { findLogFiles } from '../ingest/reader.js';
import { escapeControl } from '../text.js';

export interface SensorPlan {
  sensor: SensorConfig;
  /** Why a configured sensor is not loaded in this run; null: it is. */
  skipped: 'disabled' | 'not named by --only' | null;
}

export interface RefreshPlan {
  sessions: Limit;
  files: Limit;
  ips: Limit;
  /** IPs seen only on these sensors (`enable_asn_inventory = false`) are left out. */
  leaveOutSensors: string[];
}

export interface RunPlan {
  sensors: SensorPlan[];
  /** null: --skip-enrich. */
  refresh: RefreshPlan | null;
}

/** `[enrichment] sessions/files`: 0 skips, as `cowrie-enrich refresh` without the flag. */
function stepLimit(v: number | 'all'): Limit {
  return v === 'all' ? 'all' : v === 0 ? 'skip' : v;
}

export function planRun(sensors: SensorConfig[], cfg: Config, o: { only?: string[]; skipEnrich?: boolean }): RunPlan {
  if (!sensors.length) throw new UsageError('the config file has no [[sensor]] tables: nothing to orchestrate (see docs/OPERATIONS.md)');
  const only = o.only?.length ? new Set(o.only) : null;
  const unknown = [...(only ?? [])].filter((n) => !sensors.some((s) => s.name === n));
  if (unknown.length) throw new UsageError(`--only names no configured sensor: ${unknown.map(escapeControl).join(', ')} (configured: ${sensors.map((s) => s.name).join(', ')})`);
  const plans: SensorPlan[] = sensors.map((sensor) => ({
    sensor,
    skipped: only && !only.has(sensor.name) ? 'not named by --only' : !sensor.enabled && !only ? 'disabled' : null,
  }));
  if (!plans.some((p) => p.skipped === null)) throw new UsageError('every sensor is disabled: nothing to load (enable one, or name it with --only)');
  const refresh: RefreshPlan | null = o.skipEnrich ? null : {
    sessions: stepLimit(cfg.enrichSessions),
    files: stepLimit(cfg.enrichFiles),
    ips: cfg.ipBatchSize === 0 ? 'all' : cfg.ipBatchSize,
    leaveOutSensors: sensors.filter((s) => !s.enableAsnInventory).map((s) => s.name),
  };
  return { sensors: plans, refresh };
}

export interface PathCount {
  path: string;
  files: number;
  /** Nothing there: the path is missing, or a folder without Cowrie JSON logs. */
  missing: boolean;
}

/** For --dry-run: what each of a sensor's paths expands to (reads folder listings only). */
export async function countFiles(sensor: SensorConfig): Promise<PathCount[]> {
  const out: PathCount[] = [];
  for (const p of sensor.logpaths) {
    const found = await findLogFiles([p]);
    out.push({ path: p, files: found.files.length, missing: found.files.length === 0 });
  }
  return out;
}
