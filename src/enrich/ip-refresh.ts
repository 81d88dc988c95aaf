import { UserError } from '../errors.js';
import { fmt, notice, type Logger } from '../log.js';
import type { StatusEmitter } from '../status/emitter.js';
import { getCached, putCached } from '../store/cache-repo.js';
import { asnsWithDetails, readEnrichment, recountAsns, seenOnlyOn, selectIpsToEnrich, upsertAsns, writeIpEnrichment } from '../store/ip-repo.js';
import type { Store } from '../store/store.js';
import { isoMicros } from '../store/time.js';
import { AnswerBuffer, fromCache } from './answer-buffer.js';
import { ipScope, type IpScope } from './ip-scope.js';
import { ENRICHMENT_VERSION, mergeChunk, type ChunkMerge, type IpAnswers } from './merge.js';
import { databaseQuota } from './quota.js';
import { createCymruClient, type CymruAsnValue, type CymruIpValue } from './sources/cymru.js';
import { createGreyNoiseClient, isGreyNoiseRoutable, type GreyNoiseValue } from './sources/greynoise.js';
import { needsCymru, openMaxmind, type MaxmindValue } from './sources/maxmind.js';
import { DAY_SECONDS, type QuotaGate, type SourceResult } from './sources/types.js';

export interface IpRefreshOptions {
  /** null: every IP due (the guide's `--ips 0`). */
  limit: number | null;
  /** Refresh exactly these addresses, whatever their age. */
  ips?: string[];
  staleDays: number;
  commitInterval: number;
  offline: boolean;
  maxmindDir?: string;
  cymru: { host: string; port: number; batchSize: number; timeoutMs: number };
  greynoise: { url: string; apiKey?: string; rate: number; dailyQuota: number; mode: 'community' | 'enterprise' };
  /** Print `[ips] Processing N IPs for re-enrichment...` (when sessions or files run too). */
  announce: boolean;
  logger: Logger;
  status: StatusEmitter;
  signal?: AbortSignal;
  now?: () => Date;
  onProgress?: (phase: string, done: number, total: number) => void;
  /** IPs seen only on these sensors are not selected (cowrie-orchestrate, `enable_asn_inventory = false`). */
  leaveOutSensors?: string[];
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
  needCymru: number;
  cymruEnriched: number;
  cymruFailedBatches: number;
  cacheHits: { cymru: number; greynoise: number };
  greynoiseRequests: number;
  /** Answers GreyNoise gave (paid); requests = answers + failed IPs' attempts + retries. */
  greynoiseAnswers: number;
  /** Answered here without a request (IPv6, which GreyNoise cannot look up): not paid, not cached. */
  greynoiseLocalAnswers: number;
  greynoiseQuotaLeft: number | null;
  /** Sources that failed for the whole run (exit code 1). */
  failedSources: string[];
  seconds: { pass1: number; pass2: number; pass3: number; wall: number };
}

const ASN_DETAILS_TTL = 30 * DAY_SECONDS;

/** The three passes of the guide, with GreyNoise's rate-limited lookups overlapping passes 1 and 2. */
export async function refreshIps(store: Store, o: IpRefreshOptions): Promise<IpRefreshResult> {
  const { logger, status } = o;
  const db = store.db;
  const clock = o.now ?? (() => new Date());
  const t0 = Date.now();
  const res: IpRefreshResult = {
    selected: 0, processed: 0, enriched: 0, errors: 0, pending: 0, notPublic: 0, needCymru: 0, cymruEnriched: 0, cymruFailedBatches: 0,
    cacheHits: { cymru: 0, greynoise: 0 }, greynoiseRequests: 0, greynoiseAnswers: 0, greynoiseLocalAnswers: 0, greynoiseQuotaLeft: null, failedSources: [],
    seconds: { pass1: 0, pass2: 0, pass3: 0, wall: 0 },
  };
  const cutoff = isoMicros(clock().getTime() - o.staleDays * DAY_SECONDS * 1000);
  if (!o.ips?.length && o.limit === null) logger.info(`Querying IPs needing enrichment (>${o.staleDays} days stale)...`);
  // Sources this run cannot ask: an IP owed only by them is not due (it would be redone for nothing).
  const unavailable = [
    ...(o.maxmindDir === undefined ? ['maxmind'] : []),
    ...(o.offline ? ['cymru', 'greynoise'] : !o.greynoise.apiKey ? ['greynoise'] : []),
  ];
  const leaveOut = o.leaveOutSensors?.length ? seenOnlyOn(db, o.leaveOutSensors) : undefined;
  const candidates = await selectIpsToEnrich(db, { cutoff, limit: o.limit, ips: o.ips, unavailable, leaveOut });
  const ips = candidates.map((c) => c.ip);
  res.selected = ips.length;
  if (o.ips?.length && ips.length < new Set(o.ips).size) logger.warn(`${fmt(new Set(o.ips).size - ips.length)} of the given IPs are not in ip_inventory (load their logs first)`);
  if (!o.ips?.length && o.limit === null) logger.info(`Found ${fmt(ips.length)} IPs to enrich`);
  if (o.announce) logger.info(`[ips] Processing ${ips.length} IPs for re-enrichment...`);
  if (!ips.length) {
    logger.info('No IPs found to enrich');
    return res;
  }

  // Opened first: a --maxmind-dir without databases stops the run (exit 2) before any network call.
  let t = Date.now();
  const maxmind = await openMaxmind({ dir: o.maxmindDir, logger, now: clock });
  // Only public addresses are ever looked up. MaxMind is not consulted for the rest either: its
  // databases hold nothing for reserved ranges, and the scope is the whole answer.
  const scopes = new Map<string, IpScope>();
  for (const ip of ips) {
    const scope = ipScope(ip);
    if (scope !== 'public') scopes.set(ip, scope);
  }
  const publicIps = scopes.size ? ips.filter((ip) => !scopes.has(ip)) : ips;

  // GreyNoise needs only the list: start its rate-limited lookups now, while passes 1 and 2 run.
  const gn = startGreyNoise(store, publicIps, o, res);

  // Pass 1 — MaxMind, offline.
  logger.info('Pass 1/3: MaxMind GeoIP enrichment (offline)...');
  const mm = new Map<string, SourceResult<MaxmindValue>>();
  try {
    for (const r of maxmind.lookup(publicIps)) mm.set(r.key, r);
  } finally {
    maxmind.close();
  }
  const needCymru = publicIps.filter((ip) => needsCymru(mm.get(ip)?.value));
  const needCymruSet = new Set(needCymru);
  res.needCymru = needCymru.length;
  status.update('pass_1_maxmind', { ips_processed: ips.length, ips_total: ips.length, ip_errors: 0, need_cymru: needCymru.length }, { force: true });
  o.onProgress?.('pass_1_maxmind', ips.length, ips.length);
  logger.info(`Pass 1 complete: ${fmt(needCymru.length)} IPs need Cymru ASN enrichment`);
  res.seconds.pass1 = (Date.now() - t) / 1000;

  // Pass 2 — Team Cymru bulk whois, for IPs MaxMind has no ASN for.
  t = Date.now();
  const cymru = new Map<string, SourceResult<CymruIpValue>>();
  const client = o.offline ? null : createCymruClient({ host: o.cymru.host, port: o.cymru.port, batchSize: o.cymru.batchSize, timeoutMs: o.cymru.timeoutMs, logger });
  if (!client) {
    logger.info(`Pass 2/3: Cymru ASN enrichment skipped (--offline): ${fmt(needCymru.length)} IPs stay pending for the next online run`);
  } else {
    logger.info(`Pass 2/3: Cymru ASN enrichment (${fmt(needCymru.length)} IPs, batched)...`);
    const cached = await getCached<CymruIpValue>(db, 'cymru', needCymru);
    for (const [ip, e] of cached) cymru.set(ip, fromCache(e));
    res.cacheHits.cymru = cached.size;
    const toAsk = needCymru.filter((ip) => !cached.has(ip));
    if (cached.size) logger.info(`Cymru: ${fmt(cached.size)} IPs answered from cache (fresh within TTL), ${fmt(toAsk.length)} to query`);
    if (!needCymru.length) logger.info('Cymru batch 1/1: 0 IPs enriched');
    let failedBefore = false;
    if (toAsk.length) {
      const out = await client.lookupIps(toAsk, {
        onBatch: async (b) => {
          for (const r of b.results) cymru.set(r.key, r);
          await db.transaction((tx) => putCached(db, tx, 'cymru', b.results.filter((r) => r.status === 'hit' || r.status === 'miss')
            .map((r) => ({ key: r.key, value: r.value, fetchedAt: r.fetchedAt, ttlSeconds: r.ttlSeconds, version: r.version }))));
          if (b.ok) logger.info(`Cymru batch ${b.index}/${b.total}: ${fmt(b.enriched)} IPs enriched${failedBefore ? ' (continuing despite previous failure)' : ''}`);
          else {
            failedBefore = true;
            logger.error(`Cymru batch ${b.index}/${b.total} failed: ${b.error ?? 'no answer'}`);
          }
          status.update('pass_2_cymru', { ips_processed: cymru.size, ips_total: needCymru.length, ip_errors: 0, batch: b.index, batches: b.total, cache_hits: cached.size });
          o.onProgress?.('pass_2_cymru', cymru.size, needCymru.length);
        },
      });
      for (const r of out.results) if (!cymru.has(r.key)) cymru.set(r.key, r);
      res.cymruFailedBatches = out.failedBatches;
      if (out.stoppedEarly) {
        res.failedSources.push('cymru');
        logger.error(`Cymru stopped after 3 failed batches in a row (${out.failedBatches} failed in all); ${fmt(out.results.filter((r) => r.status === 'pending').length)} IPs stay pending for the next run`);
      } else if (out.failedBatches > 0 && !out.results.some((r) => r.status === 'hit' || r.status === 'miss')) {
        // Failed for the whole run, however few batches it had (fewer than the stop rule needs).
        res.failedSources.push('cymru');
        logger.error(`Cymru answered none of the ${fmt(toAsk.length)} IPs asked (${out.failedBatches} of ${out.failedBatches} batches failed); they stay pending for the next run`);
      }
    }
    res.cymruEnriched = needCymru.filter((ip) => { const s = cymru.get(ip)?.status; return s === 'hit' || s === 'miss'; }).length;
    logger.info(`Pass 2 complete: ${fmt(res.cymruEnriched)} IPs enriched via Cymru`);
  }
  status.update('pass_2_cymru', { ips_processed: res.cymruEnriched, ips_total: needCymru.length, ip_errors: needCymru.length - res.cymruEnriched, cache_hits: res.cacheHits.cymru }, { force: true });

  // ASNs new to asn_inventory get their own registry details (country of the ASN, not of an IP).
  const asnDetails = await lookupAsnDetails(store, ips, mm, cymru, client, logger);
  res.seconds.pass2 = (Date.now() - t) / 1000;

  // Pass 3 — merge and commit every --commit-interval IPs, waiting for GreyNoise answers as needed.
  t = Date.now();
  logger.info('Pass 3/3: Merging results and GreyNoise enrichment...');
  let processed = 0;
  const touchedAsns = new Set<number>();
  const pass3Status = (done: number, extra: Record<string, unknown> = {}, force = false) => status.update('pass_3_merge', {
    ips_processed: done, ips_total: ips.length, ip_errors: res.errors,
    ips_enriched: res.enriched, ips_pending: res.pending, ips_not_public: res.notPublic,
    rate_per_second: Math.round(done / Math.max((Date.now() - t) / 1000, 0.001)),
    eta_seconds: Math.round(((ips.length - done) * (Date.now() - t)) / Math.max(done, 1) / 1000),
    cache_hits: res.cacheHits, ...gn.counts(), ...extra,
  }, { force });
  const answers = (gnResults: Map<string, SourceResult<GreyNoiseValue>>) => (ip: string): IpAnswers => ({
    maxmind: mm.get(ip), cymru: cymru.get(ip), cymruNeeded: !!client && needCymruSet.has(ip),
    greynoise: gnResults.get(ip), greynoiseEnabled: gn.enabled, scope: scopes.get(ip),
    // What a source this run cannot ask owes the IP stays pending, so a run that can asks.
    deferred: unavailable.length ? owedLater(ip) : undefined,
  });
  const routable = routableCache();
  const owedLater = (ip: string): string[] => {
    if (scopes.has(ip)) return [];
    const owed: string[] = [];
    for (const source of unavailable) {
      if (source === 'maxmind' || (source === 'cymru' && needCymruSet.has(ip)) || (source === 'greynoise' && routable(ip))) owed.push(source);
    }
    return owed;
  };
  // One commit in flight while the next chunk is prepared: the database works while we merge.
  let inFlight: Promise<void> | null = null;
  const commit = async (chunk: ChunkMerge, n: number) => {
    await db.transaction(async (tx) => {
      await writeIpEnrichment(db, tx, chunk.rows);
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
  for (let k = 0; k < ips.length; k += o.commitInterval) {
    if (o.signal?.aborted) {
      if (inFlight) await inFlight;
      await gn.stop();
      pass3Status(processed, {}, true);
      throw new UserError(`interrupted after ${processed} IPs were committed; run again to continue`, 130);
    }
    const chunk = candidates.slice(k, k + o.commitInterval);
    // GreyNoise answers arrive at its rate: report progress every 10 IPs while waiting (the guide's status cadence).
    const gnResults = new Map<string, SourceResult<GreyNoiseValue>>();
    if (gn.enabled) {
      for (let j = 0; j < chunk.length; j += 10) {
        // Only public IPs were handed to GreyNoise; the others have no answer to wait for.
        const got = await gn.resultsFor(chunk.slice(j, j + 10).map((c) => c.ip).filter((ip) => !scopes.has(ip)));
        for (const [ip, r] of got) gnResults.set(ip, r);
        pass3Status(processed + Math.min(j + 10, chunk.length));
      }
    }
    const previous = await readEnrichment(db, chunk.filter((c) => c.enriched).map((c) => c.ip));
    const merged = mergeChunk({ candidates: chunk, previous, answers: answers(gnResults), asnDetails, now: isoMicros(clock()), version: ENRICHMENT_VERSION });
    for (const a of merged.current) touchedAsns.add(a);
    for (const a of merged.deltas.keys()) touchedAsns.add(a);
    if (inFlight) await inFlight;
    inFlight = commit(merged, chunk.length);
    // Awaited before the next commit; marked handled now so a failure is not reported as unhandled meanwhile.
    inFlight.catch(() => {});
  }
  if (inFlight) await inFlight;
  await gn.stop();
  // Exact counts for every AS this run touched (sessions loaded since may have moved them too).
  await recountAsns(db, [...touchedAsns]);
  res.greynoiseQuotaLeft = gn.enabled ? await gn.quotaLeft() : null;
  pass3Status(processed, { eta_seconds: 0, greynoise_quota_left: res.greynoiseQuotaLeft }, true);
  // The guide's line counts what it says: IPs every needed source answered, and IPs a source failed for.
  logger.info(`Pass 3 complete: ${fmt(res.enriched)} IPs enriched, ${fmt(res.errors)} errors`);
  if (res.pending) logger.info(`${fmt(res.pending)} IPs stay pending for a source not asked this run (${unavailable.length ? `${unavailable.join(', ')} unavailable` : 'stopped early'}); a run that can ask picks them up`);
  if (res.notPublic) logger.info(`${fmt(res.notPublic)} IPs are not public addresses (private, loopback, link-local, CGNAT, documentation, reserved): marked with their scope, never sent to any source`);
  res.seconds.pass3 = (Date.now() - t) / 1000;
  res.seconds.wall = (Date.now() - t0) / 1000;
  return res;
}

async function lookupAsnDetails(
  store: Store, ips: string[], mm: Map<string, SourceResult<MaxmindValue>>, cymru: Map<string, SourceResult<CymruIpValue>>,
  client: ReturnType<typeof createCymruClient> | null, logger: Logger,
): Promise<Map<number, CymruAsnValue>> {
  const seen = new Set<number>();
  for (const ip of ips) {
    const a = mm.get(ip)?.value?.asn ?? cymru.get(ip)?.value?.asn;
    if (a != null) seen.add(a);
  }
  const out = new Map<number, CymruAsnValue>();
  if (!seen.size) return out;
  const known = await asnsWithDetails(store.db, [...seen]);
  const wanted = [...seen].filter((a) => !known.has(a));
  const cached = await getCached<CymruAsnValue>(store.db, 'cymru-asn', wanted.map(String));
  for (const [k, e] of cached) if (e.value) out.set(Number(k), e.value);
  const toAsk = wanted.filter((a) => !cached.has(String(a)));
  if (!toAsk.length || !client || client.stopped) return out;
  try {
    const got = await client.lookupAsns(toAsk);
    const fetchedAt = isoMicros(new Date());
    for (const [a, v] of got) out.set(a, v);
    await store.db.transaction((tx) => putCached(store.db, tx, 'cymru-asn', [...got].map(([a, v]) => ({ key: String(a), value: v, fetchedAt, ttlSeconds: ASN_DETAILS_TTL }))));
    logger.info(`Cymru: registry details for ${fmt(got.size)} new ASNs`);
  } catch (err) {
    logger.warn(`Cymru ASN details lookup failed: ${(err as Error).message}; ASN names come from the IP rows`);
  }
  return out;
}

interface GreyNoiseRun {
  enabled: boolean;
  resultsFor(ips: string[]): Promise<Map<string, SourceResult<GreyNoiseValue>>>;
  /** For status files: requests sent, answers paid for, answers given here, IPs it failed for. */
  counts(): { greynoise_requests: number; greynoise_answers: number; greynoise_local_answers: number; greynoise_failed: number };
  stop(): Promise<void>;
  quotaLeft(): Promise<number>;
}

/** IPs failing in a row (after the client's retries) that mean GreyNoise is down for this run. */
const GREYNOISE_MAX_FAILURES_IN_ROW = 10;

function startGreyNoise(store: Store, ips: string[], o: IpRefreshOptions, res: IpRefreshResult): GreyNoiseRun {
  const { logger } = o;
  const noCounts = { greynoise_requests: 0, greynoise_answers: 0, greynoise_local_answers: 0, greynoise_failed: 0 };
  const disabled: GreyNoiseRun = { enabled: false, resultsFor: async () => new Map(), counts: () => noCounts, stop: async () => {}, quotaLeft: async () => 0 };
  if (o.offline) return disabled;
  if (!o.greynoise.apiKey) {
    // Shown without --verbose: the user may not know the key is missing. Owed IPs stay pending.
    notice(logger, 'GREYNOISE_API_KEY is not set: GreyNoise lookups skipped (IPs stay pending for GreyNoise until a run with a key)');
    return disabled;
  }
  const db = store.db;
  // Quota reserved a second's worth at a time (at most 100): one counter write per block, not per call.
  const quota = databaseQuota(db, 'greynoise', o.greynoise.dailyQuota, Math.max(1, Math.min(100, Math.floor(o.greynoise.rate))));
  const results = new Map<string, SourceResult<GreyNoiseValue>>();
  const waiters = new Map<string, () => void>();
  const buffer = new AnswerBuffer(db, 'greynoise');
  // Hard stop (an outage): in-flight requests are abandoned.
  const abort = new AbortController();
  // Soft stop (Ctrl-C, end of run): no new request goes out, those in flight finish and are stored.
  // The quota gate is the client's one hook before each send, so the stop works through it.
  let stopping = false;
  const gate: QuotaGate = { tryConsume: (n) => (stopping ? Promise.resolve(false) : quota.tryConsume(n)), remaining: () => quota.remaining() };
  const clientLogger: Logger = {
    info: (m) => logger.info(m), error: (m) => logger.error(m), debug: (m) => logger.debug(m),
    // A soft stop looks like a spent quota to the client: not worth a warning.
    warn: (m) => { if (!(stopping && /quota spent/.test(m))) logger.warn(m); },
  };
  let client: ReturnType<typeof createGreyNoiseClient> | null = null;
  let failed = 0;
  let lastFailure = '';
  const onSignal = () => {
    stopping = true;
    // Requests still waiting for a rate slot or a retry after a short grace are abandoned.
    setTimeout(() => abort.abort(), 2000).unref();
  };
  o.signal?.addEventListener('abort', onSignal, { once: true });
  const deliver = (r: SourceResult<GreyNoiseValue>) => {
    results.set(r.key, r);
    const w = waiters.get(r.key);
    if (w) {
      waiters.delete(r.key);
      w();
    }
  };
  const done = (async () => {
    const cached = await getCached<GreyNoiseValue>(db, 'greynoise', ips);
    res.cacheHits.greynoise = cached.size;
    for (const [ip, e] of cached) deliver(fromCache(e));
    const toAsk = ips.filter((ip) => !cached.has(ip));
    if (!toAsk.length) return;
    client = createGreyNoiseClient({
      url: o.greynoise.url, apiKey: o.greynoise.apiKey!, ratePerSecond: o.greynoise.rate, mode: o.greynoise.mode, quota: gate, logger: clientLogger,
    });
    let failedInRow = 0;
    const summary = await client.lookup(toAsk, async (r) => {
      if (r.local) res.greynoiseLocalAnswers++;
      else if (r.status === 'hit' || r.status === 'miss') {
        // Committed to enrichment_cache before it counts or is used: a crash never pays for it again.
        await buffer.add(r);
        res.greynoiseAnswers++;
        failedInRow = 0;
      } else if (r.status === 'error' || (r.status === 'pending' && !r.stopped)) {
        // Retries used up (5xx, timeouts): pending for the next run, and an error of this run.
        r = { ...r, status: 'error' };
        failed++;
        lastFailure = r.reason ?? '';
        // An outage: stop asking rather than retry every IP of the run against a failing service.
        if (++failedInRow === GREYNOISE_MAX_FAILURES_IN_ROW) {
          logger.error(`GreyNoise failed for ${failedInRow} IPs in a row (${r.reason}): not asking it again in this run; the rest stays pending`);
          res.failedSources.push('greynoise');
          abort.abort();
        }
      }
      deliver(r);
    }, abort.signal);
    res.greynoiseRequests = summary.sent;
    if (summary.authError) res.failedSources.push('greynoise');
    else if (failed > 0 && res.greynoiseAnswers === 0 && !res.failedSources.includes('greynoise')) {
      // Failed for the whole run, however few IPs it had (fewer than the in-a-row rule needs).
      logger.error(`GreyNoise answered none of the IPs asked (${failed} failed; last: ${lastFailure}); they stay pending for the next run`);
      res.failedSources.push('greynoise');
    }
    if (summary.quotaExhausted && !stopping) await quota.exhaust().catch(() => {});
  })().catch((err) => {
    if (abort.signal.aborted) return;
    logger.error(`GreyNoise lookups failed: ${(err as Error).message}`);
    res.failedSources.push('greynoise');
  }).finally(() => {
    if (client) res.greynoiseRequests = client.requests;
    // Anything left unanswered (an interrupted run, a failure) stays pending for the next run.
    for (const ip of ips) if (!results.has(ip)) deliver({ key: ip, status: 'pending', value: null, fetchedAt: isoMicros(new Date()), ttlSeconds: 0, reason: 'not asked', stopped: true });
  });
  return {
    enabled: true,
    async resultsFor(chunk) {
      // Every key gets a result (non-routable ones at once, as not sent), so this always settles.
      await Promise.all(chunk.map((ip) => (results.has(ip) ? null : new Promise<void>((r) => waiters.set(ip, r)))));
      return new Map(chunk.map((ip) => [ip, results.get(ip)!]));
    },
    counts: () => ({
      greynoise_requests: client ? client.requests : res.greynoiseRequests,
      greynoise_answers: res.greynoiseAnswers,
      greynoise_local_answers: res.greynoiseLocalAnswers,
      greynoise_failed: failed,
    }),
    async stop() {
      stopping = true;
      await done;
      await quota.close();
      await buffer.flush();
      o.signal?.removeEventListener('abort', onSignal);
    },
    quotaLeft: () => quota.remaining(),
  };
}

/** isGreyNoiseRoutable per /24 (every non-routable range is a /24 or wider): one check per network, not per IP. */
function routableCache(): (ip: string) => boolean {
  const seen = new Map<string, boolean>();
  return (ip) => {
    if (ip.includes(':')) return false;
    const net = ip.slice(0, ip.lastIndexOf('.'));
    let r = seen.get(net);
    if (r === undefined) seen.set(net, (r = isGreyNoiseRoutable(ip)));
    return r;
  };
}

