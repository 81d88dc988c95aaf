import type { Config } from '../config/config.js';
import { UserError } from '../errors.js';
import { fmt, type Logger } from '../log.js';
import type { StatusEmitter } from '../status/emitter.js';
import { countSessionCandidates, countSessionsAwaitingIps, sessionCandidates, snapshotSessions, type SnapshotCursor } from '../store/session-repo.js';
import type { Store } from '../store/store.js';
import { isoMicros } from '../store/time.js';
import { startWorkClaims } from './claims.js';
import { refreshFiles, type FileRefreshResult } from './file-refresh.js';
import { refreshIps, type IpRefreshResult, type LiveSplit } from './ip-refresh.js';
import { enabledSources } from './sources/index.js';

/** How many of a kind to refresh: 'skip' (0 or omitted for sessions/files), 'all', or a number. */
export type Limit = 'skip' | 'all' | number;

export interface RefreshOptions {
  sessions: Limit;
  files: Limit;
  ips: Limit;
  ipList: string[];
  config: Config;
  logger: Logger;
  status: StatusEmitter;
  signal?: AbortSignal;
  now?: () => Date;
  onProgress?: (phase: string, done: number, total: number) => void;
  /** cowrie-orchestrate: IPs seen only on these sensors (`enable_asn_inventory = false`) are not selected. */
  leaveOutSensors?: string[];
  /** Live mode (`follow --enrich`): its split of the IP sources between two loops (ip-refresh.ts). */
  live?: LiveSplit;
  /** Live mode: sessions whose IP is still owed one of these sources are not snapshotted yet. */
  sessionsWaitFor?: string[];
}

export interface RefreshResult {
  /** Sessions snapshotted by the `--sessions` step. */
  sessions: number;
  /** Sessions snapshotted after the IP passes (their IPs were enriched in this run), within the same limit. */
  sessionsAfterIps: number;
  /** Sessions that waited for their IPs when the sessions step ran. */
  sessionsAwaitingIps: number;
  files: FileRefreshResult | null;
  ips: IpRefreshResult | null;
  failedSources: string[];
}

const EPOCH = '0001-01-01T00:00:00.000000Z';
/** Session candidates read per query. */
const SESSION_PAGE = 10_000;

export function describeLimit(l: Limit): string {
  return l === 'skip' ? '0' : l === 'all' ? 'all' : String(l);
}

/** Sessions, then files, then IPs — the guide's order — then the sessions those IPs made current. */
export async function refresh(store: Store, o: RefreshOptions): Promise<RefreshResult> {
  const { logger, config: c } = o;
  const clock = o.now ?? (() => new Date());
  const runStart = isoMicros(clock());
  const out: RefreshResult = { sessions: 0, sessionsAfterIps: 0, sessionsAwaitingIps: 0, files: null, ips: null, failedSources: [] };
  logger.info(`Refresh command started with limits: sessions=${describeLimit(o.sessions)}, files=${describeLimit(o.files)}, ips=${o.ipList.length ? `${o.ipList.length} given` : describeLimit(o.ips)}`);
  const sources = enabledSources(c, logger);
  const checkAbort = () => { if (o.signal?.aborted) throw new UserError('interrupted: committed work is kept; run again to continue', 130); };

  if (o.sessions !== 'skip') {
    const candidates = await countSessionCandidates(store.db, EPOCH, o.sessionsWaitFor);
    const wanted = o.sessions === 'all' ? candidates : Math.min(o.sessions, candidates);
    logger.info(`[sessions] Processing ${wanted} sessions for re-enrichment...`);
    out.sessions = await snapshotLoop(store, { limit: wanted, commitInterval: c.commitInterval, since: EPOCH, waitFor: o.sessionsWaitFor, logger, status: o.status, signal: o.signal, clock });
    logger.info(`[sessions] ${out.sessions} sessions updated`);
    out.sessionsAwaitingIps = await countSessionsAwaitingIps(store.db);
    if (out.sessionsAwaitingIps) {
      const after = o.ips !== 'skip' || o.ipList.length ? 'snapshotted after the IP passes of this run, within --sessions' : 'run with --ips to enrich them';
      logger.info(`[sessions] ${fmt(out.sessionsAwaitingIps)} sessions wait for their IPs to be enriched (${after})`);
    }
  }
  checkAbort();
  // One holder for the run: the IPs and files it takes are claimed until their results are committed.
  const claims = startWorkClaims(store.db, { leaseSeconds: c.leaseSeconds, logger });
  try {
    await enrichClaimed();
  } finally {
    await claims.close().catch((err: unknown) => logger.warn(`Could not drop this run's work claims (${(err as Error).message}); they expire in ${c.leaseSeconds} s`));
  }
  logger.info(summaryLine(out));
  return out;

  async function enrichClaimed(): Promise<void> {
  if (o.files !== 'skip') {
    out.files = await refreshFiles(store, {
      limit: o.files === 'all' ? null : o.files, commitInterval: c.commitInterval, offline: c.offline,
      enabled: sources.some((s) => s.name === 'virustotal'),
      virustotal: { url: c.virustotalUrl, apiKey: c.virustotalKey, ratePerMinute: c.virustotalRate, dailyQuota: c.virustotalDailyQuota },
      logger, status: o.status, signal: o.signal, now: o.now, claims,
    });
    if (out.files.failedSource) out.failedSources.push('virustotal');
  }
  checkAbort();
  if (o.ips !== 'skip' || o.ipList.length) {
    out.ips = await refreshIps(store, {
      limit: o.ips === 'all' || o.ips === 'skip' ? null : o.ips, ips: o.ipList, staleDays: c.staleDays, commitInterval: c.commitInterval,
      offline: c.offline, sources: sources.filter((s) => s.keys === 'ip'), config: c,
      announce: o.sessions !== 'skip' || o.files !== 'skip', logger, status: o.status, signal: o.signal, now: o.now, onProgress: o.onProgress,
      leaveOutSensors: o.leaveOutSensors, claims, live: o.live,
    });
    out.failedSources.push(...out.ips.failedSources);
    // Sessions whose IPs got their first enrichment in this run: snapshot them now, so one command
    // leaves everything current. Part of the `--sessions` step: its limit caps both together, and
    // without `--sessions` there is no catch-up (the user did not ask for sessions).
    const budget = o.sessions === 'skip' ? 0 : o.sessions === 'all' ? Number.MAX_SAFE_INTEGER : Math.max(0, o.sessions - out.sessions);
    if (out.ips.processed && budget > 0) {
      const n = await snapshotLoop(store, {
        limit: budget, commitInterval: Math.max(c.commitInterval, 1000), since: runStart, waitFor: o.sessionsWaitFor, logger, status: o.status, signal: o.signal, clock, quiet: true,
      });
      out.sessionsAfterIps = n;
      if (n) logger.info(`[sessions] ${fmt(n)} more sessions snapshotted from IPs enriched in this run`);
    }
  }
  }
}

/** The guide's last line: every session snapshotted in the run (the step and the catch-up), IPs fully enriched. */
export function summaryLine(r: RefreshResult): string {
  return `Refresh complete: ${r.sessions + r.sessionsAfterIps} sessions, ${r.files?.updated ?? 0} files, ${r.ips?.enriched ?? 0} IPs updated`;
}

async function snapshotLoop(store: Store, o: {
  limit: number; commitInterval: number; since: string; waitFor?: string[]; logger: Logger; status: StatusEmitter; signal?: AbortSignal; clock: () => Date; quiet?: boolean;
}): Promise<number> {
  let done = 0;
  let cursor: SnapshotCursor | null = null;
  while (done < o.limit && !o.signal?.aborted) {
    // Candidates a page at a time (one ordered scan per page, even where the planner has no
    // statistics yet for freshly loaded sessions), written back a commit at a time.
    const page = await sessionCandidates(store.db, o.since, Math.min(SESSION_PAGE, o.limit - done), cursor, o.waitFor);
    if (!page.length) break;
    cursor = page[page.length - 1];
    for (let k = 0; k < page.length && !o.signal?.aborted; k += o.commitInterval) {
      const ids = page.slice(k, k + o.commitInterval).map((c) => c.sessionId);
      const n = await store.db.transaction((tx) => snapshotSessions(tx, ids, isoMicros(o.clock())));
      done += n;
      // The catch-up after the IP passes is reported by one line; the run's status stays on pass 3.
      if (o.quiet || !n) continue;
      o.logger.info(`[sessions] committed ${done} rows...`);
      o.status.update('sessions', { sessions_processed: done, sessions_total: o.limit });
    }
  }
  return done;
}
