/**
 * Team Cymru bulk whois client (enrichment Pass 2): one TCP connection per batch,
 * `begin / verbose / <lines> / end`, read to EOF. Never DNS.
 *
 * Retry policy, per batch: up to `retries` tries with exponential backoff and jitter; each retry
 * re-sends only the lines still unanswered (a drop mid-answer keeps the rows already read).
 * If lines are still unanswered and the server had engaged (banner or rows seen), the rest is
 * split in half once and each half tried once more, to isolate a poisonous line. A server that
 * refuses or never speaks gets no split: more connections would not help and only hammer it.
 * After `maxConsecutiveFailures` batches in a row with no answer at all the client stops for
 * good (Team Cymru null-routes abusive hosts); create one client per run.
 */
import { connect } from 'node:net';
import type { Logger } from '../../log.js';
import { silentLogger } from '../../log.js';
import { int, num, str } from '../../config/setting.js';
import { defineSource, type BulkHandle, type ConnectionGate, type SourceLimits } from './source.js';
import { needsCymru, type MaxmindValue } from './maxmind.js';
import type { SourceResult } from './types.js';
import { DAY_SECONDS } from './types.js';
import { normaliseIp, parseAsnResponseFull, parseBulkResponse } from './cymru-parse.js';
import type { CymruAsnValue, CymruIpValue } from './cymru-parse.js';

export type { CymruAsnValue, CymruIpValue } from './cymru-parse.js';

export const CYMRU_VERSION = 'whois.cymru.com bulk';
export const CYMRU_DEFAULT_HOST = 'whois.cymru.com';
export const CYMRU_DEFAULT_PORT = 43;
/** Cymru's BGP view refreshes every 4 hours, but origins rarely change: a week is fresh enough. */
export const CYMRU_HIT_TTL_SECONDS = 7 * DAY_SECONDS;
/** NA (allocated, not announced) answers: re-ask sooner, the prefix may get announced. */
export const CYMRU_MISS_TTL_SECONDS = DAY_SECONDS;

export interface CymruClientOptions {
  host: string;
  port: number;
  /** Deadline for one connection: connect, send, read to EOF. */
  timeoutMs?: number;
  batchSize?: number;
  /** Connections open at once by this client. */
  maxConnections?: number;
  /** Held around every connection: the bound shared with other workers on the database. */
  gate?: ConnectionGate;
  /** Tries per batch, the first included (the "3 tries"). */
  retries?: number;
  backoffBaseMs?: number;
  /** Batches in a row with no answer before the client stops asking. */
  maxConsecutiveFailures?: number;
  logger?: Logger;
  now?: () => Date;
  /** For jitter; tests may pin it. */
  random?: () => number;
}

export interface CymruBatchInfo {
  /** 1-based batch number, as logged: `Cymru batch 2/9`. */
  index: number;
  total: number;
  /** True when every IP of the batch got an answer (row or `Error:` line). */
  ok: boolean;
  /** IPs answered with a row (hits and NA misses). */
  enriched: number;
  results: SourceResult<CymruIpValue>[];
  error?: string;
}

export interface CymruLookupOptions {
  /** Called once per contacted batch, in batch order, awaited. */
  onBatch?: (info: CymruBatchInfo) => void | Promise<void>;
}

export interface CymruLookupResult {
  /** One result per distinct input IP, in input order. */
  results: SourceResult<CymruIpValue>[];
  failedBatches: number;
  stoppedEarly: boolean;
}

export interface CymruClient {
  lookupIps(ips: string[], opts?: CymruLookupOptions): Promise<CymruLookupResult>;
  lookupAsns(asns: number[]): Promise<Map<number, CymruAsnValue>>;
  /** True once the client has given up on the server for this run. */
  readonly stopped: boolean;
}

interface Exchange {
  text: string;
  error?: string;
  /** The server showed it was in bulk mode (banner or any line). */
  engaged: boolean;
}

/** Outcome of asking for some lines: answers keyed by the line sent. */
interface LinesOutcome<T> {
  answers: Map<string, T>;
  unanswered: string[];
  reason?: string;
  /** Given up because the client stopped, not because this batch failed. */
  interrupted: boolean;
}

type Parse<T> = (text: string, lines: string[]) => Map<string, T>;

/** Bound on one bulk answer: 1 KiB a line plus the banner, so a misbehaving peer cannot exhaust memory. */
const maxAnswerBytes = (lines: number) => 64 * 1024 + lines * 1024;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function createCymruClient(options: CymruClientOptions): CymruClient {
  const { host, port } = options;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const batchSize = Math.max(1, options.batchSize ?? 500);
  const maxConnections = Math.max(1, options.maxConnections ?? 2);
  const retries = Math.max(1, options.retries ?? 3);
  const backoffBaseMs = options.backoffBaseMs ?? 500;
  const maxFailures = Math.max(1, options.maxConsecutiveFailures ?? 3);
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const where = `${host}:${port}`;
  const stopReason = `Cymru stopped after ${maxFailures} failed batches`;
  let stopped = false;
  let consecutiveFailures = 0;

  function backoff(n: number): number {
    // Exponential with ±50% jitter so parallel clients do not retry in step; capped at 30 s.
    return Math.min(30_000, backoffBaseMs * 2 ** (n - 1) * (0.5 + random()));
  }

  /** Count a finished batch towards the stop rule; `answeredAny` proves the server is alive. */
  function recordBatch(answeredAny: boolean): void {
    if (answeredAny) {
      consecutiveFailures = 0;
      return;
    }
    consecutiveFailures++;
    if (consecutiveFailures >= maxFailures && !stopped) {
      stopped = true;
      // The caller reports the stop (stoppedEarly); this is detail for --verbose.
      logger.debug(`${stopReason}; not asking Cymru again this run`);
    }
  }

  /** One connection, within the shared bound when there is one (taken before connecting, given back after closing). */
  async function exchange(lines: string[]): Promise<Exchange> {
    const giveBack = await options.gate?.acquire();
    try {
      return await connectOnce(lines);
    } finally {
      await giveBack?.();
    }
  }

  function connectOnce(lines: string[]): Promise<Exchange> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let connected = false;
      let settled = false;
      const socket = connect({ host, port });
      const finish = (error?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ text, error, engaged: text.trim() !== '' });
      };
      const timer = setTimeout(() => {
        finish(connected ? `Read timeout from ${where} after ${timeoutMs / 1000} s` : `Connection timeout to ${where}`);
      }, timeoutMs);
      socket.on('connect', () => {
        connected = true;
        socket.write(`begin\nverbose\n${lines.join('\n')}\nend\n`);
      });
      let bytes = 0;
      socket.on('data', (c: Buffer) => {
        bytes += c.length;
        // A real answer is ~120 bytes a line; anything far beyond is not Cymru talking.
        if (bytes > maxAnswerBytes(lines.length)) finish(`answer from ${where} exceeds ${maxAnswerBytes(lines.length)} bytes`);
        else chunks.push(c);
      });
      socket.on('end', () => finish(chunks.length === 0 ? `connection closed by ${where} without an answer` : undefined));
      socket.on('error', (e: NodeJS.ErrnoException) => finish(socketReason(e, where)));
      socket.on('close', () => finish(`connection closed by ${where}`));
    });
  }

  /** One try at `lines`; answers merged into `answers`; returns the failure reason, if any. */
  async function tryOnce<T>(lines: string[], parse: Parse<T>, answers: Map<string, T>): Promise<{ reason?: string; engaged: boolean }> {
    const ex = await exchange(lines);
    const got = parse(ex.text, lines);
    for (const [k, v] of got) answers.set(k, v);
    const missing = lines.filter((l) => !answers.has(l)).length;
    if (missing === 0) return { engaged: true };
    const answered = lines.length - missing;
    const detail = ex.error ?? 'connection closed mid-answer';
    return { reason: answered > 0 || ex.engaged ? `${detail} (${answered} of ${lines.length} answered)` : detail, engaged: ex.engaged };
  }

  async function askLines<T>(lines: string[], parse: Parse<T>, label: string): Promise<LinesOutcome<T>> {
    const answers = new Map<string, T>();
    const pending = () => lines.filter((l) => !answers.has(l));
    const interrupted = (): LinesOutcome<T> => ({ answers, unanswered: pending(), reason: stopReason, interrupted: true });
    let reason: string | undefined;
    let engaged = false;
    for (let attempt = 1; attempt <= retries; attempt++) {
      if (attempt > 1) {
        if (stopped) return interrupted();
        const wait = backoff(attempt - 1);
        logger.debug(`${label}: try ${attempt - 1} failed (${reason}); retrying in ${Math.round(wait)} ms`);
        await sleep(wait);
        if (stopped) return interrupted();
      }
      const r = await tryOnce(pending(), parse, answers);
      reason = r.reason;
      engaged = r.engaged;
      if (!reason) return { answers, unanswered: [], interrupted: false };
    }
    const rest = pending();
    if (engaged && rest.length > 1) {
      const mid = Math.ceil(rest.length / 2);
      logger.debug(`${label}: splitting ${rest.length} unanswered lines in half after ${retries} tries (${reason})`);
      for (const half of [rest.slice(0, mid), rest.slice(mid)]) {
        if (stopped) return interrupted();
        await sleep(backoff(1));
        const r = await tryOnce(half, parse, answers);
        if (r.reason) reason = r.reason;
      }
    }
    const unanswered = pending();
    return { answers, unanswered, reason: unanswered.length ? reason : undefined, interrupted: false };
  }

  /**
   * Run batches through at most `maxConnections` workers; `done` sees each outcome in batch order.
   * Batches not yet started when the client stops get `undefined`.
   */
  async function runBatches<T>(
    batches: string[][],
    parse: Parse<T>,
    label: (i: number) => string,
    done: (i: number, o: LinesOutcome<T> | undefined) => void | Promise<void>,
  ): Promise<void> {
    const outcomes: Array<LinesOutcome<T> | undefined | null> = batches.map(() => null);
    let next = 0;
    let emitted = 0;
    let chain = Promise.resolve();
    // A throwing callback (say, a failed database write) ends the run after the batches in flight.
    let callbackFailed: { error: unknown } | undefined;
    const flush = () => {
      while (emitted < batches.length && outcomes[emitted] !== null) {
        const i = emitted++;
        const o = outcomes[i] ?? undefined;
        chain = chain.then(() => (callbackFailed ? undefined : done(i, o))).catch((error: unknown) => {
          callbackFailed ??= { error };
        });
      }
    };
    const worker = async () => {
      while (next < batches.length && !callbackFailed) {
        const i = next++;
        const o = stopped ? undefined : await askLines(batches[i], parse, label(i));
        // "In a row" by completion time: the stop comes as soon as the server looks dead.
        if (o && !o.interrupted) recordBatch(o.answers.size > 0);
        outcomes[i] = o;
        flush();
      }
    };
    await Promise.all(Array.from({ length: Math.min(maxConnections, batches.length) }, worker));
    await chain;
    if (callbackFailed) throw callbackFailed.error;
  }

  function chunk<T>(items: T[]): T[][] {
    const out: T[][] = [];
    for (let i = 0; i < items.length; i += batchSize) out.push(items.slice(i, i + batchSize));
    return out;
  }

  async function lookupIps(ips: string[], opts: CymruLookupOptions = {}): Promise<CymruLookupResult> {
    const byKey = new Map<string, SourceResult<CymruIpValue>>();
    const order: string[] = [];
    const valid: string[] = [];
    const seen = new Set<string>();
    for (const raw of ips) {
      const ip = raw.trim();
      const norm = normaliseIp(ip);
      const dedupe = norm ?? ip;
      if (seen.has(dedupe)) continue;
      seen.add(dedupe);
      order.push(ip);
      if (norm === null) byKey.set(ip, errorResult(ip, 'not an IP address', now()));
      else valid.push(ip); // validated, so no line can smuggle a newline or `end` into the request
    }
    const batches = chunk(valid);
    let failedBatches = 0;
    await runBatches(batches, parseBulkResponse, (i) => `Cymru batch ${i + 1}/${batches.length}`, async (i, o) => {
      const at = now();
      if (!o) {
        for (const ip of batches[i]) byKey.set(ip, pendingResult(ip, stopReason, at));
        return;
      }
      const results = batches[i].map((ip) => ipResult(ip, o, at));
      for (const r of results) byKey.set(r.key, r);
      const ok = o.unanswered.length === 0;
      if (!ok && !o.interrupted) failedBatches++;
      const enriched = results.filter((r) => r.status === 'hit' || r.status === 'miss').length;
      let error: string | undefined;
      if (!ok) {
        const n = batches[i].length;
        error = o.unanswered.length === n ? o.reason : `${o.reason}; ${o.unanswered.length} of ${n} IPs unanswered`;
      }
      await opts.onBatch?.({ index: i + 1, total: batches.length, ok, enriched, results, error });
    });
    const results = order.map((ip) => byKey.get(ip) ?? pendingResult(ip, stopReason, now()));
    return { results, failedBatches, stoppedEarly: stopped && results.some((r) => r.status === 'pending') };
  }

  async function lookupAsns(asns: number[]): Promise<Map<number, CymruAsnValue>> {
    const wanted = [...new Set(asns.filter((a) => Number.isSafeInteger(a) && a > 0))];
    const out = new Map<number, CymruAsnValue>();
    const batches = chunk(wanted.map((a) => `AS${a}`));
    const parse: Parse<CymruAsnValue | 'error'> = (text, lines) => {
      const nums = lines.map((l) => Number(l.slice(2)));
      const { values, errors } = parseAsnResponseFull(text, nums);
      const m = new Map<string, CymruAsnValue | 'error'>();
      for (const [a, v] of values) m.set(`AS${a}`, v);
      for (const a of errors) m.set(`AS${a}`, 'error');
      return m;
    };
    await runBatches(batches, parse, (i) => `Cymru AS batch ${i + 1}/${batches.length}`, (i, o) => {
      if (!o) return;
      for (const v of o.answers.values()) if (v !== 'error') out.set(v.asn, v);
      if (o.unanswered.length && !o.interrupted) {
        logger.warn(`Cymru AS batch ${i + 1}/${batches.length} failed: ${o.reason}`);
      }
    });
    return out;
  }

  return {
    lookupIps,
    lookupAsns,
    get stopped() {
      return stopped;
    },
  };
}

function socketReason(e: NodeJS.ErrnoException, where: string): string {
  switch (e.code) {
    case 'ECONNREFUSED':
      return `connection refused by ${where}`;
    case 'ECONNRESET':
      return `connection reset by ${where}`;
    case 'EPIPE':
      return `connection closed by ${where}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve ${where.replace(/:\d+$/, '')}`;
    case 'ETIMEDOUT':
      return `Connection timeout to ${where}`;
    default:
      return `${e.code ?? 'network error'} talking to ${where}: ${e.message.split('\n')[0]}`;
  }
}

function ipResult(ip: string, o: LinesOutcome<CymruIpValue | 'error'>, at: Date): SourceResult<CymruIpValue> {
  const a = o.answers.get(ip);
  const base = { key: ip, fetchedAt: at.toISOString(), version: CYMRU_VERSION };
  if (a === undefined) {
    // An interrupted batch carries the stop reason.
    return o.interrupted ? pendingResult(ip, o.reason ?? 'Cymru stopped', at) : errorResult(ip, o.reason ?? 'no answer', at);
  }
  if (a === 'error') return { ...base, status: 'error', value: null, reason: 'Cymru: no ASN or IP match', ttlSeconds: 0 };
  if (a.asn === null) return { ...base, status: 'miss', value: a, ttlSeconds: CYMRU_MISS_TTL_SECONDS };
  return { ...base, status: 'hit', value: a, ttlSeconds: CYMRU_HIT_TTL_SECONDS };
}

function errorResult(ip: string, reason: string, at: Date): SourceResult<CymruIpValue> {
  return { key: ip, status: 'error', value: null, reason, fetchedAt: at.toISOString(), version: CYMRU_VERSION, ttlSeconds: 0 };
}

function pendingResult(ip: string, reason: string, at: Date): SourceResult<CymruIpValue> {
  return { key: ip, status: 'pending', value: null, reason, fetchedAt: at.toISOString(), ttlSeconds: 0 };
}

function cymruLimits(o: { cymruBatchSize: number; cymruTimeout: number }): SourceLimits {
  return {
    // Team Cymru asks for bulk queries over few connections; it null-routes hosts that hammer it.
    rate: { perWindow: 2, windowMs: 1000 }, concurrency: 2, batchSize: o.cymruBatchSize, dailyQuota: null,
    // Tries per batch (the first included), then a split; 3 batches failing in a row stop the run.
    retries: 3, throttleRetries: 0, backoffMs: 500, maxRetryAfterMs: 0, timeoutMs: o.cymruTimeout * 1000, maxFailuresInRow: 3,
  };
}

/** Pass 2 of the IP refresh: bulk whois over TCP for the IPs MaxMind has no ASN for. */
export const cymruSource = defineSource({
  name: 'cymru',
  title: 'Cymru',
  keys: 'ip',
  network: true,
  defaultOn: true,
  settings: {
    cymruHost: { flag: 'cymruHost', env: 'COWRIE_CYMRU_HOST', file: 'cymru.host', def: CYMRU_DEFAULT_HOST, ...str, help: 'Team Cymru bulk whois host', arg: '<host>' },
    cymruPort: { flag: 'cymruPort', env: 'COWRIE_CYMRU_PORT', file: 'cymru.port', def: CYMRU_DEFAULT_PORT, ...int(1, 65535), help: 'Team Cymru bulk whois port', arg: '<port>' },
    cymruBatchSize: { flag: 'cymruBatchSize', env: 'COWRIE_CYMRU_BATCH_SIZE', file: 'cymru.batch_size', def: 500, ...int(1, 10_000), help: 'IPs per Cymru bulk query', arg: '<n>' },
    cymruTimeout: { flag: 'cymruTimeout', env: 'COWRIE_CYMRU_TIMEOUT', file: 'cymru.timeout', def: 30, ...num(0.1), help: 'timeout per Cymru batch, in seconds', arg: '<seconds>' },
  },
  ttl: { hitSeconds: CYMRU_HIT_TTL_SECONDS, missSeconds: CYMRU_MISS_TTL_SECONDS },
  limits: (o) => cymruLimits(o),
  after: ['maxmind'],
  // The IPs MaxMind has no ASN for (all of them when MaxMind is not in --sources).
  wants: (_ip, earlier) => needsCymru(earlier('maxmind')?.value as MaxmindValue | null | undefined),
  columns: {
    asn: { precedence: 2, from: (doc) => (doc.cymru as Partial<CymruIpValue> | undefined)?.asn ?? null },
    country: { precedence: 2, from: (doc) => (doc.cymru as Partial<CymruIpValue> | undefined)?.country ?? null },
  },
  open: (o, ctx): BulkHandle<CymruIpValue, CymruAsnValue> => {
    const l = cymruLimits(o);
    const client = createCymruClient({
      host: o.cymruHost, port: o.cymruPort, batchSize: l.batchSize, timeoutMs: l.timeoutMs, maxConnections: l.concurrency,
      retries: l.retries, backoffBaseMs: l.backoffMs, maxConsecutiveFailures: l.maxFailuresInRow, logger: ctx.logger, gate: ctx.connectionGate,
    });
    return {
      kind: 'bulk',
      lookupBatches: (ips, onBatch) => client.lookupIps(ips, { onBatch }),
      details: (asns) => client.lookupAsns(asns),
      get stopped() {
        return client.stopped;
      },
      close: () => {},
    };
  },
});
