/**
 * A whole simulated world for refresh tests: Cowrie logs generated and loaded into a fresh
 * database, GeoLite2-style databases for the same fake Internet, and the Cymru, GreyNoise and
 * VirusTotal simulators listening on 127.0.0.1. Everything real: TCP, HTTP, files, processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { ingest } from '../../src/ingest/ingest.js';
import { silentLogger } from '../../src/log.js';
import { startCymruSim, type CymruSim, type CymruSimOptions } from '../../src/sim/cymru-sim.js';
import { startGreyNoiseSim, type GreyNoiseSim, type GreyNoiseSimOptions } from '../../src/sim/greynoise-sim.js';
import { generateLogs, type GenerateLogsSummary } from '../../src/sim/log-generator.js';
import { writeWorldDatabases } from '../../src/sim/mmdb-world.js';
import { startVirusTotalSim, type VirusTotalSim, type VirusTotalSimOptions } from '../../src/sim/virustotal-sim.js';
import { isPrivateIpv4, worldMaxmindHasAsn, worldNetwork } from '../../src/sim/world.js';
import { openStore, type Store } from '../../src/store/store.js';
import { ROOT, runCli, type CliResult } from './cli.js';
import { tempDir } from './dialects.js';

export const GN_KEY = 'gn-test-key';
export const VT_KEY = 'vt-test-key';

export interface WorldOptions {
  url: string;
  seed?: number;
  /** Logs to generate and load; 0 sessions loads nothing (insert rows with insertIps). */
  sessions?: number;
  ips?: number;
  days?: number;
  /** 'world': City + ASN; 'city': City only (every IP needs Cymru); 'none': no MaxMind configured. */
  maxmind?: 'world' | 'city' | 'none';
  cymru?: CymruSimOptions;
  greynoise?: GreyNoiseSimOptions;
  virustotal?: VirusTotalSimOptions;
}

export interface World {
  url: string;
  seed: number;
  dir: string;
  mmdbDir: string;
  statusDir: string;
  logs: GenerateLogsSummary | null;
  cymru: CymruSim;
  greynoise: GreyNoiseSim;
  virustotal: VirusTotalSim;
  /** The refresh flags that point at this world (no limits). */
  flags(): string[];
  env(): NodeJS.ProcessEnv;
  /** `cowrie-enrich refresh <world flags> <args>`. */
  refresh(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult>;
  open(): Promise<Store>;
  close(): Promise<void>;
}

const mmdbCache = new Map<string, Promise<string>>();

/**
 * Full-coverage world databases for a seed, written once per day into the temp folder and
 * shared by every test file (writing them takes seconds); an atomic rename settles races.
 */
export function worldMmdbDir(seed: number): Promise<string> {
  const day = new Date().toISOString().slice(0, 10);
  const key = `${seed}-${day}`;
  let p = mmdbCache.get(key);
  if (!p) {
    p = (async () => {
      const final = path.join(os.tmpdir(), `cowrie-test-mmdb-seed${seed}-${day}`);
      const done = () => fs.existsSync(path.join(final, 'GeoLite2-City.mmdb')) && fs.existsSync(path.join(final, 'GeoLite2-ASN.mmdb'));
      if (done()) return final;
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cowrie-mmdb-tmp-'));
      await writeWorldDatabases({ dir: tmp, seed });
      try {
        fs.renameSync(tmp, final);
      } catch {
        fs.rmSync(tmp, { recursive: true, force: true });
        if (!done()) throw new Error(`cannot prepare ${final}`);
      }
      return final;
    })();
    mmdbCache.set(key, p);
  }
  return p;
}

/** A folder with only some of the world's databases (symlinks into the shared copy). */
function mmdbSubset(full: string, which: WorldOptions['maxmind'], into: string): string {
  const dir = path.join(into, 'maxmind');
  fs.mkdirSync(dir, { recursive: true });
  if (which === 'world' || which === 'city') fs.symlinkSync(path.join(full, 'GeoLite2-City.mmdb'), path.join(dir, 'GeoLite2-City.mmdb'));
  if (which === 'world') fs.symlinkSync(path.join(full, 'GeoLite2-ASN.mmdb'), path.join(dir, 'GeoLite2-ASN.mmdb'));
  return dir;
}

export async function buildWorld(o: WorldOptions): Promise<World> {
  const seed = o.seed ?? 7;
  const dir = tempDir('cowrie-world-');
  const full = await worldMmdbDir(seed);
  const mmdbDir = mmdbSubset(full, o.maxmind ?? 'world', dir);
  let logs: GenerateLogsSummary | null = null;
  if ((o.sessions ?? 0) > 0) {
    logs = await generateLogs({ outDir: path.join(dir, 'logs'), sessions: o.sessions!, ips: o.ips ?? Math.ceil(o.sessions! / 4), sensors: 2, days: o.days ?? 3, seed });
    const store = await openStore(o.url);
    try {
      const r = await ingest(store, { paths: [path.join(dir, 'logs')], mode: 'bulk', logger: silentLogger });
      expect(r.inserted).toBe(logs.events);
    } finally {
      await store.close();
    }
  }
  const cymru = await startCymruSim({ seed, ...o.cymru });
  const greynoise = await startGreyNoiseSim({ seed, apiKey: GN_KEY, ...o.greynoise });
  const virustotal = await startVirusTotalSim({ seed, apiKey: VT_KEY, ...o.virustotal });
  const statusDir = path.join(dir, 'status');
  const opened: Store[] = [];
  const w: World = {
    url: o.url, seed, dir, mmdbDir, statusDir, logs, cymru, greynoise, virustotal,
    flags: () => [
      // 'none': no MaxMind configured at all (an empty --maxmind-dir is a usage error).
      '--db', o.url, ...(o.maxmind === 'none' ? [] : ['--maxmind-dir', mmdbDir]), '--status-dir', statusDir,
      '--cymru-host', cymru.host, '--cymru-port', String(cymru.port),
      '--greynoise-url', greynoise.url, '--greynoise-rate', '200',
      '--virustotal-url', virustotal.url, '--virustotal-rate', '6000',
    ],
    env: () => ({ GREYNOISE_API_KEY: GN_KEY, VT_API_KEY: VT_KEY, COWRIE_CONFIG: '', XDG_CACHE_HOME: dir }),
    refresh: (args, opts = {}) => runCli('cowrie-enrich', ['refresh', ...w.flags(), ...args], {
      cwd: dir, env: { ...w.env(), ...opts.env }, timeoutMs: opts.timeoutMs ?? 55_000,
    }),
    open: async () => {
      const store = await openStore(o.url);
      opened.push(store);
      return store;
    },
    // Also closes every store open() handed out (closing one twice is harmless).
    close: async () => {
      await Promise.all([...opened.splice(0).map((st) => st.close()), cymru.close(), greynoise.close(), virustotal.close()]);
    },
  };
  return w;
}

/** Insert bare ip_inventory rows (as the loader would leave them), newest first in the given order. */
export async function insertIps(store: Store, ips: string[], base = Date.UTC(2024, 0, 1)): Promise<void> {
  const db = store.db;
  await db.transaction((tx) => db.insertMany(tx, {
    table: 'ip_inventory',
    columns: [['ip_address', 'text'], ['first_seen', 'timestamptz'], ['last_seen', 'timestamptz'], ['session_count', 'integer']],
    conflict: 'ON CONFLICT (ip_address) DO NOTHING',
  }, ips.map((ip, k) => {
    const t = new Date(base - k * 1000).toISOString().replace('Z', '000Z');
    return [ip, t, t, 1];
  })));
}

/** Announced public IPv4 addresses of the world, walking the /16s under the given first octets. */
export function publicIps(count: number, opts: { firstOctets: number[]; seed: number; maxmindAsn?: boolean; perNetwork?: number }): string[] {
  const per = opts.perNetwork ?? 200;
  const out: string[] = [];
  for (const a of opts.firstOctets) {
    for (let b = 0; b < 256 && out.length < count; b++) {
      const probe = `${a}.${b}.0.1`;
      if (isPrivateIpv4(probe) || !worldNetwork(probe, opts.seed).as) continue;
      if (opts.maxmindAsn !== undefined && worldMaxmindHasAsn(probe, opts.seed) !== opts.maxmindAsn) continue;
      for (let h = 1; h <= per && out.length < count; h++) out.push(`${a}.${b}.${Math.floor(h / 50)}.${h}`);
    }
    if (out.length >= count) break;
  }
  if (out.length < count) throw new Error(`only ${out.length} public IPs found`);
  return out;
}

/** Whether the simulated MaxMind ASN database has an ASN for this IP (else Pass 2 asks Cymru). */
export function maxmindHasAsn(ip: string, seed: number): boolean {
  return !ip.includes(':') && worldMaxmindHasAsn(ip, seed) && worldNetwork(ip, seed).as !== null;
}

/** The `[INFO] …` (and other tagged) lines of a run, in order. */
export function logLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /^\[(INFO|WARNING|ERROR|DEBUG)\]/.test(l));
}

/** Every expected line appears, exactly, in this order (other lines may come between). */
export function expectInOrder(lines: string[], expected: string[]): void {
  let at = 0;
  for (const e of expected) {
    const i = lines.indexOf(e, at);
    if (i < 0) throw new Error(`line not found after position ${at}: ${e}\n--- output ---\n${lines.join('\n')}`);
    at = i + 1;
  }
}

/** Most events in any window of `windowMs` (sliding, from the recorded times). */
export function maxInWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < t.length; hi++) {
    while (t[hi] - t[lo] >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

export function readJsonFile<T = Record<string, unknown>>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** Wait until `cond` holds (polling), or fail after `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A `cowrie-enrich refresh` of this world running in the background (to kill, or to run beside others). */
export interface RunningRefresh {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function startRefresh(w: World, args: string[]): RunningRefresh {
  const child = spawn(path.join(ROOT, 'bin', 'cowrie-enrich'), ['refresh', ...w.flags(), ...args], { cwd: w.dir, env: { ...process.env, ...w.env() }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b) => (err += b));
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, stderr: () => err, exited };
}
