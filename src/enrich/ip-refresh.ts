import type { Config } from '../config/config.js';
import { UserError } from '../errors.js';
import { fmt, notice, type Logger } from '../log.js';
import { escapeControl } from '../text.js';
import type { StatusEmitter } from '../status/emitter.js';
import { getCached, putCached } from '../store/cache-repo.js';
import { claimedByOthers, unclaimed } from '../store/claim-repo.js';
import { asnsWithDetails, ipsDue, ipsPendingOnly, readEnrichment, recountAsns, seenOnlyOn, selectIpsPendingOnly, selectIpsToEnrich, sortCandidates, upsertAsns, writeIpEnrichment, type IpCandidate, type PendingCandidate, type SqlCondition } from '../store/ip-repo.js';
import type { Store } from '../store/store.js';
import { isoMicros } from '../store/time.js';
import { fromCache } from './answer-buffer.js';
import { ipScope, type IpScope } from './ip-scope.js';
import { columnPlan, ENRICHMENT_VERSION, mergeChunk, type ChunkMerge, type IpAnswers } from './merge.js';
import type { WorkClaims } from './claims.js';
import { answeredNoneLine, startSourceRun, type SourceCounters, type SourceRun } from './runner.js';
import { connectionGateFor } from './shared-limits.js';
import type { CymruAsnValue } from './sources/cymru.js';
import type { BulkHandle, EarlierAnswers, HttpHandle, LocalHandle, Source } from './sources/source.js';
import { DAY_SECONDS, type SourceResult } from './sources/types.js';

export interface IpRefreshOptions {
  /** null: every IP due (the guide's `--ips 0`). */
  limit: number | null;
  /** Refresh exactly these addresses, whatever their age. */
  ips?: string[];
  staleDays: number;
  commitInterval: number;
  offline: boolean;
  /** The IP sources of this run, in `--sources` order. */
  sources: Source[];
  /** Every source's settings (each source reads its own). */
  config: Config;
  /** Print `[ips] Processing N IPs for re-enrichment...` (when sessions or files run too). */
  announce: boolean;
  logger: Logger;
  status: StatusEmitter;
  signal?: AbortSignal;
  now?: () => Date;
  onProgress?: (phase: string, done: number, total: number) => void;
  /** IPs seen only on these sensors are not selected (cowrie-orchestrate, `enable_asn_inventory = false`). */
  leaveOutSensors?: string[];
  /** This run's claims: only IPs no other worker holds are selected, and each is claimed until committed. */
  claims: WorkClaims;
  /** Live mode's split (`follow --enrich`, live.ts); a refresh sets neither. */
  live?: LiveSplit;
}

/**
 * How live mode splits the IP sources between two loops, so ASN and country never wait for a
 * rate-bounded HTTP source. Both keep the queue in `enrichment_pending`, as a refresh does.
 */
export interface LiveSplit {
  /**
   * Fast loop: sources left to the other loop, treated like sources this run cannot ask — not
   * asked, the IP stays pending for them, and an IP owed only by them is not selected.
   */
  defer?: string[];
  /**
   * HTTP loop: ask only these, and only for IPs owed nothing else (ip-repo's ipsPendingOnly),
   * longest waiting first. The other sources are not asked: their stored answers are kept and
   * still set the typed columns.
   */
  onlyPending?: string[];
}

export interface IpRefreshResult {
  selected: number;
  /** Rows written (every selected IP, unless interrupted). */
  processed: number;
  /** IPs answered by every source they needed (the guide's "N IPs enriched"). */
  enriched: number;
  /** IPs a source failed for this run (left pending for the next run). */
  errors: number;
  /** IPs still owed by a source not asked this run (stopped, offline, no key, no MaxMind); not errors. */
  pending: number;
  /** Private, loopback, link-local, CGNAT, documentation, … addresses: marked, never looked up. */
  notPublic: number;
  /** IPs due but held by other workers' live claims (left to them). */
  claimedElsewhere: number;
  /** IPs the bulk source (Cymru) was wanted for, and how many it answered. */
  needCymru: number;
  cymruEnriched: number;
  cymruFailedBatches: number;
  /** Answers taken from enrichment_cache, per network source. */
  cacheHits: Record<string, number>;
  /** Per HTTP source: requests, answers, hits, misses, local answers, failures. */
  counters: Record<string, SourceCounters>;
  /** Calls left today, per source with a daily quota. */
  quotaLeft: Record<string, number>;
  /** Sources that failed for the whole run (exit code 1). */
  failedSources: string[];
  seconds: { pass1: number; pass2: number; pass3: number; wall: number };
}

const ASN_DETAILS_TTL = 30 * DAY_SECONDS;

type AnyValues = Record<string, unknown>;
const settingsOf = (c: Config) => c as unknown as AnyValues;

/**
 * Whether a source can be asked in this run; the reason when it cannot (its keys stay pending),
 * or, in live mode's HTTP loop, 'kept' for the sources it leaves alone (nothing pending, nothing asked).
 */
export function availability(s: Source, o: Pick<IpRefreshOptions, 'offline' | 'config' | 'live'>): 'ok' | 'offline' | 'missing' | 'deferred' | 'kept' {
  if (o.live?.onlyPending && !o.live.onlyPending.includes(s.name)) return 'kept';
  if (s.network && o.offline) return 'offline';
  if (s.requires && settingsOf(o.config)[s.requires.setting] === undefined) return 'missing';
  if (o.live?.defer?.includes(s.name)) return 'deferred';
  return 'ok';
}

/**
 * The guide's three passes, scheduled by the sources' declared dependencies: independent HTTP
 * sources (GreyNoise, …) start at once and run while pass 1 (offline sources: MaxMind) and pass 2
 * (bulk sources that wait for pass 1: Cymru) work; pass 3 merges, asking each source to apply its answer.
 */
export async function refreshIps(store: Store, o: IpRefreshOptions): Promise<IpRefreshResult> {
  const { logger, status } = o;
  const db = store.db;
  const clock = o.now ?? (() => new Date());
  const t0 = Date.now();
  const res: IpRefreshResult = {
    selected: 0, processed: 0, enriched: 0, errors: 0, pending: 0, notPublic: 0, claimedElsewhere: 0, needCymru: 0, cymruEnriched: 0, cymruFailedBatches: 0,
    cacheHits: {}, counters: {}, quotaLeft: {}, failedSources: [], seconds: { pass1: 0, pass2: 0, pass3: 0, wall: 0 },
  };
  // Every IP source sets the typed columns (claims); those the live HTTP loop keeps are not run.
  const ipSources = o.sources.filter((s) => s.keys === 'ip');
  const sources = ipSources.filter((s) => availability(s, o) !== 'kept');
  const cutoff = isoMicros(clock().getTime() - o.staleDays * DAY_SECONDS * 1000);
  if (!o.ips?.length && o.limit === null) logger.info(`Querying IPs needing enrichment (>${o.staleDays} days stale)...`);
  // Sources this run cannot ask: an IP owed only by them is not due (it would be redone for nothing).
  const unavailable = sources.filter((s) => availability(s, o) !== 'ok');
  const unavailableNames = unavailable.map((s) => s.name);
  const leaveOut = o.leaveOutSensors?.length ? seenOnlyOn(db, o.leaveOutSensors) : undefined;
  // Only IPs no other worker holds, each claimed until the run ends (claims.ts).
  const only = unclaimed(db, 'ip', 'ip_inventory.ip_address');
  const selection = { cutoff, ips: o.ips, unavailable: unavailableNames, leaveOut, only };
  let candidates: IpCandidate[];
  /** What this run would have taken (for the line about IPs other workers hold). */
  let due: SqlCondition;
  // Live HTTP loop: the sources each IP is still owed (it asks no other).
  let owes: Map<string, string[]> | null = null;
  if (o.live?.onlyPending) {
    // Not within a day (half the stale age, if shorter) of stale: the fast loop takes those once
    // stale (due for every source), so one IP is never in both loops at once.
    const freshSince = isoMicros(clock().getTime() - (o.staleDays - Math.min(1, o.staleDays / 2)) * DAY_SECONDS * 1000);
    const pendingOnly = { sources: o.live.onlyPending, unavailable: unavailableNames, freshSince, leaveOut };
    // Longest waiting first: kept as selected (no re-sort).
    const pending = await o.claims.take<PendingCandidate>('ip', o.limit, (limit) => selectIpsPendingOnly(db, { ...pendingOnly, limit, only }), (c) => c.ip);
    owes = new Map(pending.map((c) => [c.ip, c.pending]));
    candidates = pending;
    due = ipsPendingOnly(pendingOnly);
  } else {
    candidates = sortCandidates(await o.claims.take('ip', o.ips?.length ? null : o.limit, (limit) => selectIpsToEnrich(db, { ...selection, limit }), (c) => c.ip));
    due = o.ips?.length ? db.inKeys('ip_address', o.ips) : ipsDue(selection);
  }
  const ips = candidates.map((c) => c.ip);
  res.selected = ips.length;
  const elsewhere = await claimedByOthers(db, 'ip', o.claims.holder, 'ip_inventory', 'ip_address', due);
  res.claimedElsewhere = elsewhere.items;
  if (o.ips?.length) {
    const missing = new Set(o.ips).size - ips.length - elsewhere.items;
    if (missing > 0) logger.warn(`${fmt(missing)} of the given IPs are not in ip_inventory (load their logs first)`);
  }
  if (!o.ips?.length && o.limit === null) logger.info(`Found ${fmt(ips.length)} IPs to enrich`);
  if (elsewhere.items) {
    const who = elsewhere.holders.slice(0, 3).join(', ') + (elsewhere.holders.length > 3 ? `, and ${elsewhere.holders.length - 3} more` : '');
    notice(logger, `${fmt(elsewhere.items)} IPs due are being enriched by another worker (${escapeControl(who)}); left to it`);
  }
  if (o.announce) logger.info(`[ips] Processing ${ips.length} IPs for re-enrichment...`);
  if (!ips.length) {
    logger.info('No IPs found to enrich');
    return res;
  }

  const ctx = { logger, now: clock };
  const local = sources.filter((s) => !s.network);
  const bulk: Source[] = [];
  const http: Source[] = [];
  // Offline sources are opened first: a --maxmind-dir without databases stops the run (exit 2)
  // before any network call. Their missing settings are their own warnings (they stay pending).
  const localHandles = new Map<string, LocalHandle<unknown>>();
  for (const s of local) localHandles.set(s.name, (await s.open(settingsOf(o.config), ctx)) as LocalHandle<unknown>);
  // Only public addresses are ever looked up. Offline sources are not consulted for the rest
  // either: their databases hold nothing for reserved ranges, and the scope is the whole answer.
  const scopes = new Map<string, IpScope>();
  for (const ip of ips) {
    const scope = ipScope(ip);
    if (scope !== 'public') scopes.set(ip, scope);
  }
  const publicIps = scopes.size ? ips.filter((ip) => !scopes.has(ip)) : ips;
  const answers = new Map<string, Map<string, SourceResult<unknown>>>(sources.map((s) => [s.name, new Map()]));
  const earlier = (ip: string): EarlierAnswers => (name) => answers.get(name)?.get(ip);
  const wanted = (s: Source, ip: string) => (!owes || owes.get(ip)!.includes(s.name)) && (!s.wants || s.wants(ip, earlier(ip)));

  // Network sources that need only the list start now and overlap passes 1 and 2.
  const runs: SourceRun<unknown>[] = [];
  const startHttp = async (s: Source) => {
    const handle = (await s.open(settingsOf(o.config), ctx)) as HttpHandle<unknown>;
    runs.push(startSourceRun({
      db, source: s, handle, limits: s.limits(settingsOf(o.config)), keys: publicIps.filter((ip) => wanted(s, ip)), logger, signal: o.signal,
    }));
  };
  for (const s of sources) if (s.network) res.cacheHits[s.name] = 0;
  for (const s of sources.filter((x) => x.network)) {
    const state = availability(s, o);
    if (state === 'missing' && s.requires) {
      // Shown without --verbose: the user may not know the setting is missing. Owed IPs stay pending.
      notice(logger, `${s.requires.shown} is not set: ${s.title} lookups skipped (IPs stay pending for ${s.title} until a run with ${s.requires.until})`);
    }
    if (s.after?.length) bulk.push(s);
    else {
      http.push(s);
      if (state === 'ok') await startHttp(s);
    }
  }
  const httpTitles = http.map((s) => s.title);

  // Pass 1 — offline sources.
  let t = Date.now();
  for (const s of local) {
    logger.info(`Pass 1/3: ${s.title} GeoIP enrichment (offline)...`);
    const h = localHandles.get(s.name)!;
    const got = answers.get(s.name)!;
    try {
      for (const r of h.lookup(publicIps)) got.set(r.key, r);
    } finally {
      h.close();
    }
  }
  // What the bulk sources want, given pass 1's answers (Cymru: IPs without an ASN).
  const bulkWanted = new Map(bulk.map((s) => [s.name, publicIps.filter((ip) => wanted(s, ip))]));
  const firstBulk = bulk[0];
  const needBulk = firstBulk ? bulkWanted.get(firstBulk.name)! : [];
  res.needCymru = needBulk.length;
  if (local.length) {
    status.update('pass_1_maxmind', { ips_processed: ips.length, ips_total: ips.length, ip_errors: 0, need_cymru: needBulk.length }, { force: true });
    o.onProgress?.('pass_1_maxmind', ips.length, ips.length);
    logger.info(`Pass 1 complete: ${fmt(needBulk.length)} IPs need ${firstBulk?.title ?? 'Cymru'} ASN enrichment`);
  }
  res.seconds.pass1 = (Date.now() - t) / 1000;

  // Pass 2 — bulk sources, for the IPs they want given pass 1.
  t = Date.now();
  const asnDetails = new Map<number, CymruAsnValue>();
  for (const s of bulk) {
    const need = bulkWanted.get(s.name)!;
    const got = answers.get(s.name)!;
    if (availability(s, o) !== 'ok') {
      logger.info(`Pass 2/3: ${s.title} ASN enrichment skipped (--offline): ${fmt(need.length)} IPs stay pending for the next online run`);
      status.update(`pass_2_${s.name}`, { ips_processed: 0, ips_total: need.length, ip_errors: need.length, cache_hits: 0 }, { force: true });
      continue;
    }
    // Its connections are bounded for every worker on the database together (Cymru: 2).
    const connectionGate = connectionGateFor(db, s.name, s.limits(settingsOf(o.config)), { signal: o.signal, logger });
    const handle = (await s.open(settingsOf(o.config), { ...ctx, connectionGate })) as BulkHandle<unknown, CymruAsnValue>;
    try {
      await bulkPass(store, s, handle, need, got, o, res);
      // ASNs new to asn_inventory get their own registry details (country of the ASN, not of an IP).
      if (handle.details) for (const [a, v] of await lookupAsnDetails(store, s, ips, sources, answers, handle, logger)) asnDetails.set(a, v);
    } finally {
      handle.close();
    }
  }
  res.seconds.pass2 = (Date.now() - t) / 1000;

  // Pass 3 — merge and commit every --commit-interval IPs, waiting for the HTTP sources' answers as needed.
  t = Date.now();
  logger.info(`Pass 3/3: Merging results${httpTitles.length ? ` and ${httpTitles.join(', ')} enrichment` : ''}...`);
  let processed = 0;
  const touchedAsns = new Set<number>();
  const runCounts = () => {
    const out: Record<string, number> = {};
    for (const run of runs) {
      const c = run.counts();
      const n = run.source.name;
      Object.assign(out, {
        [`${n}_requests`]: c.requests, [`${n}_answers`]: c.answers, [`${n}_hits`]: c.hits, [`${n}_misses`]: c.misses,
        [`${n}_local_answers`]: c.localAnswers, [`${n}_failed`]: c.failed,
      });
      res.cacheHits[n] = c.cacheHits;
    }
    return out;
  };
  const pass3Status = (done: number, extra: Record<string, unknown> = {}, force = false) => status.update('pass_3_merge', {
    ips_processed: done, ips_total: ips.length, ip_errors: res.errors,
    ips_enriched: res.enriched, ips_pending: res.pending, ips_not_public: res.notPublic,
    rate_per_second: Math.round(done / Math.max((Date.now() - t) / 1000, 0.001)),
    eta_seconds: Math.round(((ips.length - done) * (Date.now() - t)) / Math.max(done, 1) / 1000),
    ...(() => { const c = runCounts(); return { cache_hits: { ...res.cacheHits }, ...c }; })(), ...extra,
  }, { force });
  const claims = columnPlan(ipSources);
  // A run that asks no source of the ASN (live HTTP loop) leaves asn_last_verified as stored.
  const keepAsnVerified = !claims.asn.some((c) => sources.some((s) => s.name === c.source && availability(s, o) === 'ok'));
  const available = sources.filter((s) => availability(s, o) === 'ok');
  // What a source this run cannot ask owes the IP stays pending, so a run that can asks.
  const owedLater = (ip: string): string[] => unavailable.filter((s) => wanted(s, ip) && !s.answeredLocally?.(ip)).map((s) => s.name);
  const ipAnswers = (ip: string): IpAnswers => ({
    scope: scopes.get(ip),
    results: (name) => answers.get(name)?.get(ip),
    asked: scopes.has(ip) ? [] : available.filter((s) => wanted(s, ip)).map((s) => s.name),
    deferred: unavailable.length && !scopes.has(ip) ? owedLater(ip) : undefined,
    claims,
  });
  // One commit in flight while the next chunk is prepared: the database works while we merge.
  let inFlight: Promise<void> | null = null;
  const commit = async (chunk: ChunkMerge, n: number) => {
    await db.transaction(async (tx) => {
      await writeIpEnrichment(db, tx, chunk.rows, { keepAsnVerified });
      await upsertAsns(db, tx, chunk.asns, chunk.deltas);
    });
    processed += n;
    res.processed = processed;
    res.enriched += chunk.enriched;
    res.errors += chunk.errors;
    res.pending += chunk.pending;
    res.notPublic += chunk.notPublic;
    logger.info(`[ips] committed ${processed} rows...`);
    pass3Status(processed);
    o.onProgress?.('pass_3_merge', processed, ips.length);
  };
  const finishRuns = async () => {
    for (const run of runs) {
      try {
        const out = await run.finish();
        if (out.answeredNone) logger.error(answeredNoneLine(run.source, run.counts(), out));
        if (out.failedForRun) res.failedSources.push(run.source.name);
      } catch (err) {
        logger.error(`${run.source.title} lookups failed: ${(err as Error).message}`);
        res.failedSources.push(run.source.name);
      }
    }
  };
  for (let k = 0; k < ips.length; k += o.commitInterval) {
    if (o.signal?.aborted) {
      if (inFlight) await inFlight;
      await finishRuns();
      pass3Status(processed, {}, true);
      throw new UserError(`interrupted after ${processed} IPs were committed; run again to continue`, 130);
    }
    const chunk = candidates.slice(k, k + o.commitInterval);
    // Answers arrive at each source's rate: report progress every 10 IPs while waiting (the guide's status cadence).
    if (runs.length) {
      for (let j = 0; j < chunk.length; j += 10) {
        // Only public IPs were handed to the sources; the others have no answer to wait for.
        const part = chunk.slice(j, j + 10).map((c) => c.ip).filter((ip) => !scopes.has(ip));
        for (const run of runs) {
          const got = await run.resultsFor(part.filter((ip) => wanted(run.source, ip)));
          const into = answers.get(run.source.name)!;
          for (const [ip, r] of got) into.set(ip, r);
        }
        pass3Status(processed + Math.min(j + 10, chunk.length));
      }
    }
    const previous = await readEnrichment(db, chunk.filter((c) => c.enriched).map((c) => c.ip));
    const merged = mergeChunk({ candidates: chunk, previous, answers: ipAnswers, asnDetails, now: isoMicros(clock()), version: ENRICHMENT_VERSION });
    for (const a of merged.current) touchedAsns.add(a);
    for (const a of merged.deltas.keys()) touchedAsns.add(a);
    if (inFlight) await inFlight;
    inFlight = commit(merged, chunk.length);
    // Awaited before the next commit; marked handled now so a failure is not reported as unhandled meanwhile.
    inFlight.catch(() => {});
    // Answers already merged are not needed again.
    for (const c of chunk) for (const m of answers.values()) m.delete(c.ip);
  }
  if (inFlight) await inFlight;
  await finishRuns();
  // Exact counts for every AS this run touched (sessions loaded since may have moved them too).
  await recountAsns(db, [...touchedAsns]);
  const quotaFields: Record<string, unknown> = {};
  for (const run of runs) {
    res.counters[run.source.name] = run.counts();
    const left = await run.quotaLeft();
    if (left !== null) {
      res.quotaLeft[run.source.name] = left;
      quotaFields[`${run.source.name}_quota_left`] = left;
    }
  }
  for (const s of http) if (!(`${s.name}_quota_left` in quotaFields) && s.limits(settingsOf(o.config)).dailyQuota !== null) quotaFields[`${s.name}_quota_left`] = null;
  pass3Status(processed, { eta_seconds: 0, ...quotaFields }, true);
  // The guide's line counts what it says: IPs every needed source answered, and IPs a source failed for.
  logger.info(`Pass 3 complete: ${fmt(res.enriched)} IPs enriched, ${fmt(res.errors)} errors`);
  if (res.pending) logger.info(`${fmt(res.pending)} IPs stay pending for a source not asked this run (${unavailable.length ? `${unavailableNames.join(', ')} unavailable` : 'stopped early'}); a run that can ask picks them up`);
  if (res.notPublic) logger.info(`${fmt(res.notPublic)} IPs are not public addresses (private, loopback, link-local, CGNAT, documentation, reserved): marked with their scope, never sent to any source`);
  res.seconds.pass3 = (Date.now() - t) / 1000;
  res.seconds.wall = (Date.now() - t0) / 1000;
  return res;
}

/** A bulk source's pass (Cymru): cached answers first, then batches, each committed to the cache before it counts. */
async function bulkPass(
  store: Store, s: Source, handle: BulkHandle<unknown>, need: string[], got: Map<string, SourceResult<unknown>>, o: IpRefreshOptions, res: IpRefreshResult,
): Promise<void> {
  const { logger, status } = o;
  const db = store.db;
  const phase = `pass_2_${s.name}`;
  logger.info(`Pass 2/3: ${s.title} ASN enrichment (${fmt(need.length)} IPs, batched)...`);
  const cached = await getCached<unknown>(db, s.name, need);
  for (const [ip, e] of cached) got.set(ip, fromCache(e));
  res.cacheHits[s.name] = cached.size;
  const toAsk = need.filter((ip) => !cached.has(ip));
  if (cached.size) logger.info(`${s.title}: ${fmt(cached.size)} IPs answered from cache (fresh within TTL), ${fmt(toAsk.length)} to query`);
  if (!need.length) logger.info(`${s.title} batch 1/1: 0 IPs enriched`);
  let failedBefore = false;
  if (toAsk.length) {
    const out = await handle.lookupBatches(toAsk, async (b) => {
      for (const r of b.results) got.set(r.key, r);
      await db.transaction((tx) => putCached(db, tx, s.name, b.results.filter((r) => r.status === 'hit' || r.status === 'miss')
        .map((r) => ({ key: r.key, value: r.value, fetchedAt: r.fetchedAt, ttlSeconds: r.ttlSeconds, version: r.version }))));
      if (b.ok) logger.info(`${s.title} batch ${b.index}/${b.total}: ${fmt(b.enriched)} IPs enriched${failedBefore ? ' (continuing despite previous failure)' : ''}`);
      else {
        failedBefore = true;
        logger.error(`${s.title} batch ${b.index}/${b.total} failed: ${b.error ?? 'no answer'}`);
      }
      status.update(phase, { ips_processed: got.size, ips_total: need.length, ip_errors: 0, batch: b.index, batches: b.total, cache_hits: cached.size });
      o.onProgress?.(phase, got.size, need.length);
    });
    for (const r of out.results) if (!got.has(r.key)) got.set(r.key, r);
    res.cymruFailedBatches = out.failedBatches;
    const maxInRow = s.limits(settingsOf(o.config)).maxFailuresInRow;
    if (out.stoppedEarly) {
      res.failedSources.push(s.name);
      logger.error(`${s.title} stopped after ${maxInRow} failed batches in a row (${out.failedBatches} failed in all); ${fmt(out.results.filter((r) => r.status === 'pending').length)} IPs stay pending for the next run`);
    } else if (out.failedBatches > 0 && !out.results.some((r) => r.status === 'hit' || r.status === 'miss')) {
      // Failed for the whole run, however few batches it had (fewer than the stop rule needs).
      res.failedSources.push(s.name);
      logger.error(`${s.title} answered none of the ${fmt(toAsk.length)} IPs asked (${out.failedBatches} of ${out.failedBatches} batches failed); they stay pending for the next run`);
    }
  }
  res.cymruEnriched = need.filter((ip) => { const st = got.get(ip)?.status; return st === 'hit' || st === 'miss'; }).length;
  logger.info(`Pass 2 complete: ${fmt(res.cymruEnriched)} IPs enriched via ${s.title}`);
  status.update(phase, { ips_processed: res.cymruEnriched, ips_total: need.length, ip_errors: need.length - res.cymruEnriched, cache_hits: cached.size }, { force: true });
}

/** Registry details (country, registry) of the ASNs this run's IPs belong to and asn_inventory lacks. */
async function lookupAsnDetails(
  store: Store, s: Source, ips: string[], sources: Source[], answers: Map<string, Map<string, SourceResult<unknown>>>,
  handle: BulkHandle<unknown, CymruAsnValue>, logger: Logger,
): Promise<Map<number, CymruAsnValue>> {
  const plan = columnPlan(sources).asn;
  const seen = new Set<number>();
  for (const ip of ips) {
    for (const c of plan) {
      const r = answers.get(c.source)?.get(ip);
      const a = r?.value ? c.from({ [c.source]: r.value }) : null;
      if (a != null) {
        seen.add(a);
        break;
      }
    }
  }
  const out = new Map<number, CymruAsnValue>();
  if (!seen.size) return out;
  const service = `${s.name}-asn`;
  const known = await asnsWithDetails(store.db, [...seen]);
  const wanted = [...seen].filter((a) => !known.has(a));
  const cached = await getCached<CymruAsnValue>(store.db, service, wanted.map(String));
  for (const [k, e] of cached) if (e.value) out.set(Number(k), e.value);
  const toAsk = wanted.filter((a) => !cached.has(String(a)));
  if (!toAsk.length || handle.stopped) return out;
  try {
    const got = await handle.details!(toAsk);
    const fetchedAt = isoMicros(new Date());
    for (const [a, v] of got) out.set(a, v);
    await store.db.transaction((tx) => putCached(store.db, tx, service, [...got].map(([a, v]) => ({ key: String(a), value: v, fetchedAt, ttlSeconds: ASN_DETAILS_TTL }))));
    logger.info(`${s.title}: registry details for ${fmt(got.size)} new ASNs`);
  } catch (err) {
    logger.warn(`${s.title} ASN details lookup failed: ${(err as Error).message}; ASN names come from the IP rows`);
  }
  return out;
}
