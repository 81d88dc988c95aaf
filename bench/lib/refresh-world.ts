/**
 * Bench fixtures for `cowrie-enrich refresh`: the simulators in a child process, a database of
 * N attacker IPs (rows inserted directly, as the loader leaves them), sessions for them, and a
 * runner that times one refresh in this process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type Config } from '../../src/config/config.js';
import { refresh, type Limit, type RefreshResult } from '../../src/enrich/refresh.js';
import { isGreyNoiseRoutable } from '../../src/enrich/sources/greynoise.js';
import { MemoryLogger } from '../../src/log.js';
import { hash32, isPrivateIpv4 } from '../../src/sim/world.js';
import { StatusEmitter } from '../../src/status/emitter.js';
import type { Store } from '../../src/store/store.js';
import type { SimsOptions, SimsReady, SimsStats } from './refresh-sims.js';

export const GN_KEY = 'bench-gn-key';
export const VT_KEY = 'bench-vt-key';

export interface Sims {
  ready: SimsReady;
  stats(): Promise<SimsStats>;
  stop(): Promise<void>;
}

export async function startSims(opts: SimsOptions): Promise<Sims> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'refresh-sims.js');
  const child: ChildProcess = fork(script, [JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = <T>(type: string) => new Promise<T>((resolve, reject) => {
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`simulators exited (${code})`)));
  });
  const ready = await next<SimsReady>('ready');
  return {
    ready,
    stats: () => {
      const p = next<SimsStats>('stats');
      child.send({ type: 'stats' });
      return p;
    },
    stop: () => new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.send({ type: 'stop' });
    }),
  };
}

/** N distinct attacker addresses of the simulated world: public IPv4, about 3% IPv6. */
export function benchIps(n: number, seed: number): string[] {
  const out = new Set<string>();
  for (let i = 0; out.size < n; i++) {
    const h = hash32(`bench-ip:${i}`, seed);
    const g = hash32(`bench-ip2:${i}`, seed);
    if (h % 100 < 3) {
      out.add(`2a0${h % 10}:${(g & 0xffff).toString(16)}:${(g >>> 16).toString(16)}::${(h >>> 8 & 0xfff).toString(16)}`);
      continue;
    }
    const ip = `${1 + (h % 223)}.${(h >>> 8) & 255}.${(h >>> 16) & 255}.${1 + (g % 254)}`;
    if (!isPrivateIpv4(ip) && isGreyNoiseRoutable(ip)) out.add(ip);
  }
  return [...out];
}

const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '000Z');
const BASE = Date.UTC(2024, 5, 1);

export async function insertIps(store: Store, ips: string[]): Promise<void> {
  const db = store.db;
  for (let k = 0; k < ips.length; k += 5000) {
    const chunk = ips.slice(k, k + 5000);
    await db.transaction((tx) => db.insertMany(tx, {
      table: 'ip_inventory',
      columns: [['ip_address', 'text'], ['first_seen', 'timestamptz'], ['last_seen', 'timestamptz'], ['session_count', 'integer']],
      conflict: 'ON CONFLICT (ip_address) DO NOTHING',
    }, chunk.map((ip, j) => [ip, iso(BASE - (k + j) * 1000 - 86_400_000), iso(BASE - (k + j) * 1000), 10])));
  }
}

/** `perIp` sessions for each IP, as the loader would summarise them. */
export async function insertSessions(store: Store, ips: string[], perIp: number): Promise<number> {
  const db = store.db;
  const rows: unknown[][] = [];
  ips.forEach((ip, i) => {
    for (let s = 0; s < perIp; s++) {
      const t = BASE - (i * perIp + s) * 60_000;
      rows.push([`s${i.toString(36)}x${s.toString(36)}`, 'honeypot-01', ip, iso(t - 30_000), iso(t), 5]);
    }
  });
  for (let k = 0; k < rows.length; k += 10_000) {
    await db.transaction((tx) => db.insertMany(tx, {
      table: 'session_summaries',
      columns: [['session_id', 'text'], ['sensor', 'text'], ['source_ip', 'text'], ['first_event_at', 'timestamptz'], ['last_event_at', 'timestamptz'], ['event_count', 'integer']],
      conflict: 'ON CONFLICT (session_id) DO NOTHING',
    }, rows.slice(k, k + 10_000)));
  }
  return rows.length;
}

export function benchConfig(url: string, sims: Sims | null, o: { mmdbDir: string; greynoiseRate?: number; offline?: boolean; statusDir: string; commitInterval?: number }): Config {
  return resolveConfig({
    db: url, maxmindDir: o.mmdbDir, statusDir: o.statusDir, offline: o.offline ?? false, commitInterval: o.commitInterval,
    cymruHost: sims?.ready.cymru.host ?? '127.0.0.1', cymruPort: sims?.ready.cymru.port ?? 9,
    greynoiseUrl: sims?.ready.greynoiseUrl ?? 'http://127.0.0.1:9', greynoiseRate: o.greynoiseRate ?? 10,
    virustotalUrl: sims?.ready.virustotalUrl ?? 'http://127.0.0.1:9',
  }, { GREYNOISE_API_KEY: GN_KEY, VT_API_KEY: VT_KEY }, {});
}

export interface Timed {
  result: RefreshResult;
  /** Seconds around the whole refresh() call. */
  wall: number;
  /** CPU seconds this process used meanwhile (user + system, all threads). */
  cpu: number;
  /** One-minute load average when the run started (the machine may be shared). */
  load: number;
  lines: string[];
}

export async function timeRefresh(store: Store, config: Config, limits: { sessions?: Limit; files?: Limit; ips?: Limit }): Promise<Timed> {
  const logger = new MemoryLogger();
  const status = new StatusEmitter({ dir: config.statusDir, minIntervalMs: 1000 });
  const load = os.loadavg()[0];
  const c = process.cpuUsage();
  const t = performance.now();
  const result = await refresh(store, { sessions: limits.sessions ?? 'skip', files: limits.files ?? 'skip', ips: limits.ips ?? 'skip', ipList: [], config, logger, status });
  const wall = (performance.now() - t) / 1000;
  const used = process.cpuUsage(c);
  status.finish('complete');
  return { result, wall, cpu: (used.user + used.system) / 1e6, load, lines: logger.lines };
}

export function scratchDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model.trim() ?? 'unknown CPU'} (${cpus.length} cores), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${os.platform()} ${os.release()}`;
}
