import { UserError } from '../errors.js';
import { fmt, type Logger } from '../log.js';
import type { StatusEmitter } from '../status/emitter.js';
import { getCached, putCached } from '../store/cache-repo.js';
import { asnsWithDetails, readIps, selectIpsToEnrich, upsertAsns, writeIpEnrichment, type AsnRow, type IpEnrichmentRow } from '../store/ip-repo.js';
import type { Store } from '../store/store.js';
import { isoMicros } from '../store/time.js';
import { AnswerBuffer, fromCache } from './answer-buffer.js';
import { ENRICHMENT_VERSION, asnFacts, mergeIp } from './merge.js';
import { databaseQuota } from './quota.js';
import { createCymruClient, type CymruAsnValue, type CymruIpValue } from './sources/cymru.js';
import { createGreyNoiseClient, type GreyNoiseValue } from './sources/greynoise.js';
import { needsCymru, openMaxmind, type MaxmindValue } from './sources/maxmind.js';
import { DAY_SECONDS, type SourceResult } from './sources/types.js';

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
}

export interface IpRefreshResult {
  selected: number;
  enriched: number;
  errors: number;
  needCymru: number;
  cymruEnriched: number;
  cymruFailedBatches: number;
  cacheHits: { cymru: number; greynoise: number };
  greynoiseRequests: number;
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
    selected: 0, enriched: 0, errors: 0, needCymru: 0, cymruEnriched: 0, cymruFailedBatches: 0,
    cacheHits: { cymru: 0, greynoise: 0 }, greynoiseRequests: 0, greynoiseQuotaLeft: null, failedSources: [],
    seconds: { pass1: 0, pass2: 0, pass3: 0, wall: 0 },
  };
  const cutoff = isoMicros(clock().getTime() - o.staleDays * DAY_SECONDS * 1000);
  if (!o.ips?.length && o.limit === null) logger.info(`Querying IPs needing enrichment (>${o.staleDays} days stale)...`);
  const candidates = await selectIpsToEnrich(db, { cutoff, limit: o.limit, ips: o.ips });
  const ips = candidates.map((c) => c.ip);
  res.selected = ips.length;
  if (o.ips?.length && ips.length < new Set(o.ips).size) logger.warn(`${fmt(new Set(o.ips).size - ips.length)} of the given IPs are not in ip_inventory (load their logs first)`);
  if (!o.ips?.length && o.limit === null) logger.info(`Found ${fmt(ips.length)} IPs to enrich`);
  if (o.announce) logger.info(`[ips] Processing ${ips.length} IPs for re-enrichment...`);
  if (!ips.length) {
    logger.info('No IPs found to enrich');
    return res;
  }

  // GreyNoise needs only the list: start its rate-limited lookups now, while passes 1 and 2 run.
  const gn = startGreyNoise(store, ips, o, res);

  // Pass 1 — MaxMind, offline.
  let t = Date.now();
  logger.info('Pass 1/3: MaxMind GeoIP enrichment (offline)...');
  const maxmind = await openMaxmind({ dir: o.maxmindDir, logger, now: clock });
  const mm = new Map<string, SourceResult<MaxmindValue>>();
  try {
    for (const r of maxmind.lookup(ips)) mm.set(r.key, r);
  } finally {
    maxmind.close();
  }
  const needCymru = ips.filter((ip) => needsCymru(mm.get(ip)?.value));
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
    logger.info(`Pass 2/3: Cymru ASN enrichment skipped (--offline): ${fmt(needCymru.length)} IPs keep their previous ASN data`);
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
            .map((r) => ({ key: r.key, value: r.value, fetchedAt: r.fetchedAt, ttlSeconds: r.ttlSeconds }))));
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
        logger.error(`Cymru stopped after ${out.failedBatches} failed batches in a row; ${fmt(out.results.filter((r) => r.status === 'pending').length)} IPs stay pending for the next run`);
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
  for (let k = 0; k < ips.length; k += o.commitInterval) {
    if (o.signal?.aborted) {
      await gn.stop();
      status.update('pass_3_merge', { ips_processed: processed, ips_total: ips.length, ip_errors: res.errors }, { force: true });
      throw new UserError(`interrupted after ${processed} IPs were committed; run again to continue`, 130);
    }
    const chunk = ips.slice(k, k + o.commitInterval);
    const gnResults = await gn.resultsFor(chunk);
    const previous = await readIps(db, chunk);
    const now = isoMicros(clock());
    const rows: IpEnrichmentRow[] = [];
    const asns = new Map<number, AsnRow>();
    for (const ip of chunk) {
      const prev = previous.get(ip);
      const merged = mergeIp({
        previous: prev?.enrichment ?? {}, maxmind: mm.get(ip), cymru: cymru.get(ip), cymruNeeded: !!client && needCymruSet.has(ip),
        greynoise: gnResults.get(ip), greynoiseEnabled: gn.enabled,
      });
      if (merged.failed.length) res.errors++;
      rows.push({
        ip, enrichment: merged.enrichment, currentAsn: merged.currentAsn, geoCountry: merged.geoCountry, isScanner: merged.isScanner,
        updatedAt: now, asnVerifiedAt: merged.asnAnsweredNow ? now : null, version: ENRICHMENT_VERSION,
        pending: merged.pending.length ? merged.pending.join(',') : null,
      });
      if (merged.currentAsn !== null) {
        const facts = asnFacts(merged.currentAsn, asnDetails.get(merged.currentAsn), merged.enrichment);
        const a = asns.get(merged.currentAsn);
        const first = prev?.firstSeen ?? null;
        const last = prev?.lastSeen ?? null;
        if (!a) {
          asns.set(merged.currentAsn, {
            asn: merged.currentAsn, name: facts.name, country: facts.country, registry: facts.registry, firstSeen: first, lastSeen: last,
            enrichment: facts.details ? { cymru: { ...facts.details, fetched_at: now } } : null, updatedAt: now,
          });
        } else {
          if (first && (!a.firstSeen || first < a.firstSeen)) a.firstSeen = first;
          if (last && (!a.lastSeen || last > a.lastSeen)) a.lastSeen = last;
        }
      }
    }
    await db.transaction(async (tx) => {
      await writeIpEnrichment(db, tx, rows);
      await upsertAsns(db, tx, [...asns.values()]);
    });
    processed += chunk.length;
    res.enriched = processed;
    logger.info(`[ips] committed ${processed} rows...`);
    status.update('pass_3_merge', {
      ips_processed: processed, ips_total: ips.length, ip_errors: res.errors,
      rate_per_second: Math.round(processed / Math.max((Date.now() - t) / 1000, 0.001)),
      eta_seconds: Math.round(((ips.length - processed) * (Date.now() - t)) / Math.max(processed, 1) / 1000),
      cache_hits: res.cacheHits, greynoise_requests: res.greynoiseRequests,
    });
    o.onProgress?.('pass_3_merge', processed, ips.length);
  }
  await gn.stop();
  res.greynoiseQuotaLeft = gn.enabled ? await gn.quotaLeft() : null;
  status.update('pass_3_merge', {
    ips_processed: processed, ips_total: ips.length, ip_errors: res.errors, cache_hits: res.cacheHits,
    greynoise_requests: res.greynoiseRequests, greynoise_quota_left: res.greynoiseQuotaLeft,
  }, { force: true });
  logger.info(`Pass 3 complete: ${fmt(processed)} IPs enriched, ${fmt(res.errors)} errors`);
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
  stop(): Promise<void>;
  quotaLeft(): Promise<number>;
}

function startGreyNoise(store: Store, ips: string[], o: IpRefreshOptions, res: IpRefreshResult): GreyNoiseRun {
  const { logger } = o;
  const disabled: GreyNoiseRun = { enabled: false, resultsFor: async () => new Map(), stop: async () => {}, quotaLeft: async () => 0 };
  if (o.offline) return disabled;
  if (!o.greynoise.apiKey) {
    logger.info('GREYNOISE_API_KEY is not set: GreyNoise lookups skipped');
    return disabled;
  }
  const db = store.db;
  const quota = databaseQuota(db, 'greynoise', o.greynoise.dailyQuota);
  const results = new Map<string, SourceResult<GreyNoiseValue>>();
  const waiters = new Map<string, Array<() => void>>();
  const buffer = new AnswerBuffer(db, 'greynoise');
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  o.signal?.addEventListener('abort', onSignal, { once: true });
  const deliver = (r: SourceResult<GreyNoiseValue>) => {
    results.set(r.key, r);
    for (const w of waiters.get(r.key) ?? []) w();
    waiters.delete(r.key);
  };
  const done = (async () => {
    const cached = await getCached<GreyNoiseValue>(db, 'greynoise', ips);
    res.cacheHits.greynoise = cached.size;
    for (const [ip, e] of cached) deliver(fromCache(e));
    const toAsk = ips.filter((ip) => !cached.has(ip));
    if (!toAsk.length) return;
    const client = createGreyNoiseClient({
      url: o.greynoise.url, apiKey: o.greynoise.apiKey!, ratePerSecond: o.greynoise.rate, mode: o.greynoise.mode, quota, logger,
    });
    const summary = await client.lookup(toAsk, (r) => {
      buffer.add(r);
      deliver(r);
    }, abort.signal);
    res.greynoiseRequests = summary.sent;
    if (summary.authError) res.failedSources.push('greynoise');
    if (summary.quotaExhausted) await quota.exhaust().catch(() => {});
    // Anything left unanswered (an interrupted run) is pending.
    for (const ip of toAsk) if (!results.has(ip)) deliver({ key: ip, status: 'pending', value: null, fetchedAt: isoMicros(new Date()), ttlSeconds: 0, reason: 'not asked' });
  })().catch((err) => {
    logger.error(`GreyNoise lookups failed: ${(err as Error).message}`);
    res.failedSources.push('greynoise');
    for (const ip of ips) if (!results.has(ip)) deliver({ key: ip, status: 'error', value: null, fetchedAt: isoMicros(new Date()), ttlSeconds: 0, reason: (err as Error).message });
  });
  return {
    enabled: true,
    async resultsFor(chunk) {
      // The client answers every key (non-routable ones at once, as not sent), so this always settles.
      await Promise.all(chunk.map((ip) => (results.has(ip) ? null : new Promise<void>((r) => {
        const list = waiters.get(ip) ?? [];
        list.push(r);
        waiters.set(ip, list);
      }))));
      await buffer.flush();
      return new Map(chunk.map((ip) => [ip, results.get(ip)!]));
    },
    async stop() {
      abort.abort();
      await done;
      await buffer.flush();
      o.signal?.removeEventListener('abort', onSignal);
    },
    quotaLeft: () => quota.remaining(),
  };
}
