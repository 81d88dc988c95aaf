/**
 * A protocol-true Team Cymru bulk whois server (docs/PROTOCOLS.md §1) answering from the
 * deterministic fake Internet in world.ts. Rows use the measured verbose column widths;
 * every input line counts for `Error: … on line N.` numbering (`begin` = 1).
 *
 * Rate limit (`maxConnectionsPerSecond`, off unless set): a connection arriving when that many
 * were already served in the last second is accepted and closed without a word, as an
 * overloaded or throttling server would; it does not count towards the window.
 */
import { createServer, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { WORLD_AS_COUNT, hash32, isPrivateIpv4, worldAs, worldNetwork } from './world.js';
import type { WorldAs } from './world.js';

export interface CymruSimFaults {
  /** Probability per connection of closing it at once without a word. */
  refuse?: number;
  /** Close the first N connections at once. */
  failFirstN?: number;
  /** Probability per connection of never answering (not even the banner). */
  stall?: number;
  /** Stop answering (keep the socket open) when one of these query lines arrives. */
  stallOnLines?: string[];
  /** Probability per connection of dropping it part-way through the answer. */
  drop?: number;
  /** Drop the first N served connections after `dropAfterLines` answered query lines (default 10). */
  dropFirstN?: number;
  dropAfterLines?: number;
  /** Poisonous lines: reaching one drops the connection after the rows before it. */
  dropOnLines?: string[];
  /** Probability per query line of a garbage line before its answer. */
  garbage?: number;
  /** Extra adjacent row for the same IP with another AS (older servers did this): rate, or listed IPs. */
  duplicate?: number; duplicateIps?: string[];
  /** Several origin ASes in one row (`4808 23724`). */
  multiOrigin?: number; multiOriginIps?: string[];
  /** Answer NA (allocated, not announced), keeping CC / registry / date. */
  na?: number; naIps?: string[];
  /** Answer `Error: no ASN or IP match on line N.` instead of a row. */
  error?: number; errorIps?: string[];
}

export interface CymruSimOptions {
  host?: string;
  port?: number;
  seed?: number;
  /** Delay before the first answer of each bulk session. */
  latencyMsPerBatch?: number;
  /** Delay before each answered line. */
  latencyMsPerIp?: number;
  maxConnectionsPerSecond?: number;
  /** Print column headings before the first IP row and the first AS row (real bulk mode does not). */
  header?: boolean;
  faults?: CymruSimFaults;
  /** Clock for the banner. */
  now?: () => Date;
}

export interface CymruSimStats {
  /** Every accepted connection, rate-limited and refused ones included. */
  connections: number;
  /** Bulk sessions started (`begin` received). */
  batches: number;
  /** Query lines received per bulk session (what the client sent), recorded at `end` or close. */
  batchSizes: number[];
  ipsAnswered: number;
  asnsAnswered: number;
  /** Most sessions open at once; a session ends when either side closes or ends its half. */
  maxConcurrent: number;
  /** Accept times (ms since epoch) of every connection. */
  connectionTimes: number[];
  /** Accept times of connections actually served (not rate-limited, not refused). */
  servedTimes: number[];
  rateLimited: number;
  refused: number;
}

export interface CymruSim {
  host: string;
  port: number;
  stats: CymruSimStats;
  setFaults(faults: CymruSimFaults): void;
  close(): Promise<void>;
}

export const CYMRU_IP_HEADER = 'AS      | IP               | BGP Prefix          | CC | Registry | Allocated  | AS Name';
export const CYMRU_ASN_HEADER = 'AS      | CC | Registry | Allocated  | AS Name';

const KEYWORDS = new Set([
  'verbose', 'prefix', 'noprefix', 'countrycode', 'nocountrycode', 'asname', 'noasname', 'registry', 'noregistry',
  'allocdate', 'noallocdate', 'truncate', 'notruncate', 'header', 'noheader', 'asnumber', 'noasnumber', 'help',
]);

const pad = (s: string, w: number) => s.padEnd(w);

export function formatBanner(at: Date): string {
  const iso = at.toISOString();
  return `Bulk mode; whois.cymru.com [${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000]`;
}

/** One verbose row: AS(7) | IP(16 or 40) | prefix(19) | CC(2) | registry(8) | allocated(10) | name. */
export function formatIpRow(as: string, ip: string, prefix: string, cc: string, registry: string, allocated: string, name: string): string {
  const ipWidth = ip.includes(':') ? 40 : 16;
  return [pad(as, 7), pad(ip, ipWidth), pad(prefix, 19), pad(cc, 2), pad(registry, 8), pad(allocated, 10), name].join(' | ');
}

export function formatAsnRow(as: WorldAs): string {
  return [pad(String(as.asn), 7), pad(as.country, 2), pad(as.registry, 8), pad(as.allocated, 10), as.name].join(' | ');
}

function isPrivate(ip: string): boolean {
  if (!ip.includes(':')) return isPrivateIpv4(ip);
  const l = ip.toLowerCase();
  return l === '::1' || l === '::' || /^f[cd]/.test(l) || /^fe[89ab]/.test(l);
}

/** Small seeded PRNG (mulberry32) so fault draws repeat for a seed and connection number. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startCymruSim(options: CymruSimOptions = {}): Promise<CymruSim> {
  const host = options.host ?? '127.0.0.1';
  const seed = options.seed ?? 1;
  const now = options.now ?? (() => new Date());
  let faults: CymruSimFaults = options.faults ?? {};
  const stats: CymruSimStats = {
    connections: 0, batches: 0, batchSizes: [], ipsAnswered: 0, asnsAnswered: 0, maxConcurrent: 0,
    connectionTimes: [], servedTimes: [], rateLimited: 0, refused: 0,
  };
  const asByNumber = new Map<number, WorldAs>();
  const asList: WorldAs[] = [];
  for (let i = 0; i < WORLD_AS_COUNT; i++) {
    const as = worldAs(i, seed);
    if (!asByNumber.has(as.asn)) asByNumber.set(as.asn, as);
    asList.push(as);
  }
  const sockets = new Set<Socket>();
  let open = 0;

  const inList = (list: string[] | undefined, line: string) => !!list && list.some((x) => x.toLowerCase() === line.toLowerCase());
  const otherAs = (as: WorldAs, salt: string) => {
    const other = asList[hash32(`${as.asn}:${salt}`, seed) % asList.length];
    return other.asn === as.asn ? asList[(asList.indexOf(other) + 1) % asList.length] : other;
  };

  /** The answer lines for one IP query. */
  function answerIp(ip: string, lineNo: number, rnd: () => number): string[] {
    const f = faults;
    if (inList(f.errorIps, ip) || rnd() < (f.error ?? 0)) return [`Error: no ASN or IP match on line ${lineNo}.`];
    if (isPrivate(ip)) return [formatIpRow('NA', ip, 'NA', '', 'other', '', 'NA')];
    const net = worldNetwork(ip, seed);
    if (!net.as || inList(f.naIps, ip) || rnd() < (f.na ?? 0)) {
      return [formatIpRow('NA', ip, 'NA', net.country, net.registry, net.allocated, 'NA')];
    }
    const as = net.as;
    let asField = String(as.asn);
    if (inList(f.multiOriginIps, ip) || rnd() < (f.multiOrigin ?? 0)) asField += ` ${otherAs(as, 'moas').asn}`;
    const rows = [formatIpRow(asField, ip, net.prefix, net.country, net.registry, net.allocated, as.name)];
    if (inList(f.duplicateIps, ip) || rnd() < (f.duplicate ?? 0)) {
      const dup = otherAs(as, 'dup');
      rows.push(formatIpRow(String(dup.asn), ip, net.prefix, net.country, net.registry, net.allocated, dup.name));
    }
    return rows;
  }

  function garbageLine(rnd: () => number): string {
    const kinds = [
      () => `%% garbled ${Math.floor(rnd() * 1e9).toString(16)} %%`,
      () => `${1000 + Math.floor(rnd() * 9000)}    | 203.0.`,
      () => '| | | |',
      () => `\u0000\u0007 ${'#'.repeat(1 + Math.floor(rnd() * 20))}`,
    ];
    return kinds[Math.floor(rnd() * kinds.length)]();
  }

  function serve(sock: Socket, connNo: number, release: () => void): void {
    const rnd = prng(hash32(`conn${connNo}`, seed));
    const stallAll = rnd() < (faults.stall ?? 0);
    let dropAt = rnd() < (faults.drop ?? 0) ? Math.floor(rnd() * 200) : -1;
    if (stats.servedTimes.length <= (faults.dropFirstN ?? 0)) dropAt = faults.dropAfterLines ?? 10;
    const queue: string[] = [];
    let head = 0;
    let partial = '';
    let running = false;
    let clientEnded = false;
    let dead = false;
    let bulk = false;
    let lineNo = 0;
    let queries = 0;
    // Intake accounting, independent of answering (a stalled session still received its lines).
    let inBulk = false;
    let received = 0;
    let recorded = false;
    let latencyDone = false;
    let header = options.header ?? false;
    const headersSent = { ip: false, as: false };
    let out: string[] = [];

    const flush = (cb?: () => void) => {
      if (out.length > 0) sock.write(out.join(''), cb ? () => cb() : undefined);
      else if (cb) cb();
      out = [];
    };
    const emit = (line: string): void => void out.push(`${line}\n`);
    const record = () => {
      if (inBulk && !recorded) stats.batchSizes.push(received);
      recorded = true;
    };
    const intake = (line: string) => {
      const l = line.trim().toLowerCase();
      if (l === '' || recorded) return;
      if (!inBulk) {
        if (/(^|\s)begin$/.test(l)) {
          inBulk = true;
          stats.batches++;
        }
      } else if (l === 'end') record();
      else if (!KEYWORDS.has(l)) received++;
    };
    const endSession = () => {
      dead = true;
      flush();
      sock.end();
      release();
    };

    async function beforeAnswer(): Promise<void> {
      const wait = (latencyDone ? 0 : options.latencyMsPerBatch ?? 0) + (options.latencyMsPerIp ?? 0);
      latencyDone = true;
      if (wait > 0) {
        flush();
        await sleep(wait);
      }
    }

    async function handle(raw: string): Promise<void> {
      lineNo++;
      const line = raw.trim();
      const lower = line.toLowerCase();
      if (line === '') return;
      if (!bulk) {
        if (/(^|\s)begin$/i.test(line)) {
          bulk = true;
          emit(formatBanner(now()));
          return;
        }
        // Single-query mode (`whois -h … " -v 8.8.8.8"`): header, one answer, close.
        const query = line.split(/\s+/).filter((t) => !t.startsWith('-')).pop() ?? '';
        header = true;
        await answer(query, 1);
        endSession();
        return;
      }
      if (lower === 'end') return endSession();
      if (KEYWORDS.has(lower)) {
        if (lower === 'header') header = true;
        if (lower === 'noheader') header = false;
        return;
      }
      queries++;
      if (inList(faults.stallOnLines, line)) {
        dead = true; // keep the socket open, answer nothing more
        flush();
        return;
      }
      if (inList(faults.dropOnLines, line) || (dropAt >= 0 && queries > dropAt)) {
        // A clean close part-way: the rows already sent arrive, the rest never does.
        dead = true;
        flush(() => sock.end());
        release();
        return;
      }
      await answer(line, lineNo);
    }

    async function answer(query: string, n: number): Promise<void> {
      await beforeAnswer();
      if (rnd() < (faults.garbage ?? 0)) emit(garbageLine(rnd));
      const asMatch = /^AS(\d{1,10})$/i.exec(query);
      if (asMatch) {
        const as = asByNumber.get(Number(asMatch[1]));
        if (!as) return emit(`Error: no ASN or IP match on line ${n}.`);
        if (header && !headersSent.as) emit(CYMRU_ASN_HEADER);
        headersSent.as = true;
        stats.asnsAnswered++;
        return emit(formatAsnRow(as));
      }
      if (isIP(query) === 0) return emit(`Error: no ASN or IP match on line ${n}.`);
      const lines = answerIp(query, n, rnd);
      if (header && !headersSent.ip && !lines[0].startsWith('Error:')) {
        emit(CYMRU_IP_HEADER);
        headersSent.ip = true;
      }
      for (const l of lines) emit(l);
      stats.ipsAnswered++;
    }

    async function run(): Promise<void> {
      if (running) return;
      running = true;
      try {
        while (head < queue.length && !dead && !stallAll) await handle(queue[head++]);
        if (!dead) flush();
        if (clientEnded && !dead && !stallAll && head >= queue.length) endSession();
      } finally {
        running = false;
      }
      if (head < queue.length && !dead && !stallAll) void run();
    }

    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const p of parts) {
        const line = p.replace(/\r$/, '');
        intake(line);
        queue.push(line);
      }
      void run();
    });
    sock.on('end', () => {
      clientEnded = true;
      if (stallAll) release(); // the client gave up on us
      if (partial !== '') {
        const line = partial.replace(/\r$/, '');
        intake(line);
        queue.push(line);
      }
      partial = '';
      void run();
    });
    sock.on('close', () => {
      record();
      dead = true;
      release();
    });
  }

  const server = createServer({ allowHalfOpen: true }, (sock) => {
    sockets.add(sock);
    open++;
    stats.maxConcurrent = Math.max(stats.maxConcurrent, open);
    let released = false;
    const release = () => {
      if (!released) open--;
      released = true;
    };
    sock.on('close', () => {
      sockets.delete(sock);
      release();
    });
    sock.on('error', () => {}); // clients vanish; that is their business
    const t = Date.now();
    stats.connectionTimes.push(t);
    const connNo = ++stats.connections;
    const limit = options.maxConnectionsPerSecond;
    if (limit !== undefined && stats.servedTimes.filter((s) => s > t - 1000).length >= limit) {
      stats.rateLimited++;
      sock.end();
      release();
      return;
    }
    const refuseRnd = prng(hash32(`refuse${connNo}`, seed));
    if (connNo <= (faults.failFirstN ?? 0) || refuseRnd() < (faults.refuse ?? 0)) {
      stats.refused++;
      sock.destroy();
      release();
      return;
    }
    stats.servedTimes.push(t);
    serve(sock, connNo, release);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;

  return {
    host,
    port,
    stats,
    setFaults(f: CymruSimFaults) {
      faults = f;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
