/**
 * Synthetic Cowrie JSON logs, deterministic for a seed: realistic sessions from a heavy-tailed
 * set of public IPs, several sensors, daily rotation (`<out>/<sensor>/cowrie.json.YYYY-MM-DD`,
 * the last day plain `cowrie.json`), old and new Cowrie field forms, and optional faulty lines.
 * Events are streamed to files in time order through a small heap, so memory stays bounded.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import { normaliseIp } from '../ingest/parse.js';
import { hash32, isPrivateIpv4 } from './world.js';
import { Prng } from './log-vocab.js';
import { FAULT_KINDS, faultLine } from './log-faults.js';
import { cowrieTimestamp, sessionId48, SessionWriter, uuidFor, type SensorInfo } from './log-session.js';

export interface GenerateLogsOptions {
  outDir: string;
  sessions: number;
  /** Size of the attacker IP pool; every IP is used when sessions >= ips. */
  ips: number;
  sensors: number;
  days: number;
  seed: number;
  /** Gzip the rotated (dated) files. */
  gzip?: boolean;
  /** Mix in faulty lines (one set per day, first sensor). */
  faults?: boolean;
  /** First day, YYYY-MM-DD (UTC). Default 2024-01-01. */
  startDate?: string;
}

export interface GenerateLogsSummary {
  files: number;
  paths: string[];
  /** Well-formed session event lines (fault lines not included). */
  events: number;
  sessions: number;
  uniqueIps: number;
  faultLines: number;
}

const DAY_US = 86_400_000_000;
const ZIPF_S = 1.1;

export function sensorNames(count: number): string[] {
  const names: string[] = [];
  for (let k = 0; k < count; k++) names.push(count > 1 && k === count - 1 ? 'dshield-01' : `honeypot-${String(k + 1).padStart(2, '0')}`);
  return names;
}

function isReserved(a: number, b: number, c: number): boolean {
  return (a === 100 && b >= 64 && b <= 127) || (a === 192 && b === 0 && (c === 0 || c === 2)) || (a === 198 && (b === 18 || b === 19))
    || (a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113);
}

function makeIpPool(count: number, rng: Prng): string[] {
  const seen = new Set<string>();
  const pool: string[] = [];
  while (pool.length < count) {
    let ip: string;
    if (rng.chance(0.05)) {
      const g = [0x2001 + rng.int(0x0c00), 1 + rng.int(0xffff), rng.int(0x10000), rng.chance(0.5) ? 0 : rng.int(0x10000), 0, 0, rng.chance(0.5) ? 0 : rng.int(0x10000), 1 + rng.int(0xffff)];
      if (g[0] === 0x2001 && g[1] === 0x0db8) continue; // documentation prefix
      ip = normaliseIp(g.map((x) => x.toString(16)).join(':')) as string;
    } else {
      const a = 1 + rng.int(223), b = rng.int(256), c = rng.int(256), d = 1 + rng.int(254);
      ip = `${a}.${b}.${c}.${d}`;
      if (isPrivateIpv4(ip) || isReserved(a, b, c)) continue;
    }
    if (seen.has(ip)) continue;
    seen.add(ip);
    pool.push(ip);
  }
  return pool;
}

function zipfCdf(n: number): Float64Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) cdf[r] = sum += 1 / Math.pow(r + 1, ZIPF_S);
  for (let r = 0; r < n; r++) cdf[r] /= sum;
  return cdf;
}

function sampleCdf(cdf: Float64Array, u: number): number {
  let lo = 0, hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface Pending {
  t: number;
  seq: number;
  sensor: number;
  line: string | Buffer;
  fault: boolean;
}

/** Min-heap on (time, sequence): a stable time order across interleaved sessions. */
class Heap {
  readonly items: Pending[] = [];
  #less(a: Pending, b: Pending): boolean {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }
  push(p: Pending): void {
    const h = this.items;
    h.push(p);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }
  pop(): Pending | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l], h[m])) m = l;
        if (r < h.length && this.#less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/** One open log file; lines are buffered and written in large pieces with backpressure. */
class LogFile {
  readonly day: number;
  readonly path: string;
  readonly #sink: Writable;
  readonly #file: WriteStream;
  #text: string[] = [];
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(path: string, day: number, gzip: boolean) {
    this.path = path;
    this.day = day;
    this.#file = createWriteStream(path);
    if (gzip) {
      const gz = createGzip();
      gz.pipe(this.#file);
      this.#sink = gz;
    } else {
      this.#sink = this.#file;
    }
  }

  /** Returns true when the caller should `await flush()`. */
  add(line: string | Buffer): boolean {
    if (typeof line === 'string') {
      this.#text.push(line);
    } else {
      // Raw bytes (e.g. invalid UTF-8) must not pass through a string.
      this.#spill();
      this.#chunks.push(line, NEWLINE);
    }
    this.#size += line.length + 1;
    return this.#size >= 256 * 1024;
  }

  #spill(): void {
    if (this.#text.length === 0) return;
    this.#text.push('');
    this.#chunks.push(Buffer.from(this.#text.join('\n')));
    this.#text = [];
  }

  async flush(): Promise<void> {
    this.#spill();
    if (this.#chunks.length === 0) return;
    const buf = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#size = 0;
    if (!this.#sink.write(buf)) await once(this.#sink, 'drain');
  }

  async close(): Promise<void> {
    await this.flush();
    const closed = once(this.#file, 'close');
    this.#sink.end();
    await closed;
  }
}

const NEWLINE = Buffer.from('\n');

function startOfDay(date: string | undefined): number {
  const text = date ?? '2024-01-01';
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  const ms = m ? Date.UTC(+m[1], +m[2] - 1, +m[3]) : NaN;
  if (!m || new Date(ms).toISOString().slice(0, 10) !== text) throw new Error(`startDate must be a date like 2024-01-01, got '${text}'`);
  return ms;
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be a whole number >= ${min}, got ${v}`);
}

/** Write the logs; see the module comment for the layout. */
export async function generateLogs(opts: GenerateLogsOptions): Promise<GenerateLogsSummary> {
  checkCount('sessions', opts.sessions, 0);
  checkCount('ips', opts.ips, 1);
  checkCount('sensors', opts.sensors, 1);
  checkCount('days', opts.days, 1);
  const seed = opts.seed >>> 0;
  const startUs = startOfDay(opts.startDate) * 1000;
  const totalUs = opts.days * DAY_US;
  // Separate streams, so switching faults on does not change the sessions.
  const rng = new Prng(hash32('sessions', seed));
  const faultRng = new Prng(hash32('faults', seed));
  const pool = makeIpPool(opts.ips, new Prng(hash32('ips', seed)));
  const cdf = zipfCdf(pool.length);
  const used = new Uint8Array(pool.length);
  const sensors: SensorInfo[] = sensorNames(opts.sensors).map((name, k) => ({
    name, field: name.startsWith('dshield') ? '' : name, dstIp: `192.168.${100 + k}.${166 - k}`, uuid: uuidFor(seed, k),
    upgradeUs: startUs + Math.floor((totalUs * (k + 1)) / (opts.sensors + 1)),
  }));
  // Traffic per sensor falls off 1, 1/2, 1/3, ...
  const sensorCdf: number[] = [];
  let acc = 0;
  for (let k = 0; k < sensors.length; k++) sensorCdf.push(acc += 1 / (k + 1));
  for (let k = 0; k < sensors.length; k++) sensorCdf[k] /= acc;

  const heap = new Heap();
  let seq = 0;
  const summary: GenerateLogsSummary = { files: 0, paths: [], events: 0, sessions: opts.sessions, uniqueIps: 0, faultLines: 0 };
  const files: Array<LogFile | null> = sensors.map(() => null);
  for (const s of sensors) mkdirSync(join(opts.outDir, s.name), { recursive: true });

  const drain = async (limit: number) => {
    while (heap.items.length > 0 && heap.items[0].t < limit) {
      const p = heap.pop() as Pending;
      const day = Math.min(opts.days - 1, Math.max(0, Math.floor((p.t - startUs) / DAY_US)));
      let f = files[p.sensor];
      if (f === null || f.day !== day) {
        if (f !== null) await f.close();
        const last = day === opts.days - 1;
        const name = last ? 'cowrie.json' : `cowrie.json.${new Date((startUs + day * DAY_US) / 1000).toISOString().slice(0, 10)}${opts.gzip ? '.gz' : ''}`;
        f = new LogFile(join(opts.outDir, sensors[p.sensor].name, name), day, opts.gzip === true && !last);
        files[p.sensor] = f;
        summary.paths.push(f.path);
      }
      if (p.fault) summary.faultLines++;
      else summary.events++;
      if (f.add(p.line)) await f.flush();
    }
  };

  if (opts.faults) {
    const ipv4 = pool.find((ip) => !ip.includes(':')) ?? '45.95.147.9';
    for (let d = 0; d < opts.days; d++) {
      FAULT_KINDS.forEach((kind, k) => {
        const t = startUs + d * DAY_US + faultRng.int(DAY_US);
        const session = sessionId48(opts.sessions + d * FAULT_KINDS.length + k, seed);
        const line = faultLine(kind, { timestamp: cowrieTimestamp(t), ipv4, sensor: sensors[0].field, session });
        heap.push({ t, seq: seq++, sensor: 0, line, fault: true });
      });
    }
  }

  // One session per day boundary starts 30 s before midnight and runs past it.
  const slot = totalUs / Math.max(1, opts.sessions);
  const crossing = new Map<number, number>();
  for (let d = 1; d < opts.days; d++) {
    const target = d * DAY_US - 30_000_000;
    const j = Math.floor(target / slot);
    if (j >= 0 && j < opts.sessions) crossing.set(j, startUs + target);
  }

  let sensorIdx = 0;
  const writer = new SessionWriter(rng, seed, (t, line) => heap.push({ t, seq: seq++, sensor: sensorIdx, line, fault: false }));
  let covered = 0;
  for (let i = 0; i < opts.sessions; i++) {
    const forced = crossing.get(i);
    const start = forced ?? startUs + Math.floor(slot * (i + rng.next()));
    await drain(start);
    // Every pool IP gets a session (while sessions last); the rest follow a Zipf law: few IPs, many sessions.
    const uncovered = pool.length - covered;
    const ipIdx = uncovered > 0 && rng.next() < uncovered / (opts.sessions - i) ? covered++ : sampleCdf(cdf, rng.next());
    if (used[ipIdx] === 0) {
      used[ipIdx] = 1;
      summary.uniqueIps++;
    }
    const u = rng.next();
    sensorIdx = sensorCdf.findIndex((c) => u < c);
    if (sensorIdx < 0) sensorIdx = sensors.length - 1;
    writer.write(i, start, pool[ipIdx], sensors[sensorIdx], forced === undefined ? null : forced + 60_000_000);
  }
  await drain(Infinity);
  for (const f of files) if (f !== null) await f.close();
  summary.paths.sort();
  summary.files = summary.paths.length;
  return summary;
}
