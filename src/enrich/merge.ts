import type { CymruAsnValue, CymruIpValue } from './sources/cymru.js';
import type { MaxmindValue } from './sources/maxmind.js';
import type { Source } from './sources/source.js';
import type { SourceResult } from './sources/types.js';
import { pendingColumn, type AsnDelta, type AsnRow, type IpCandidate, type IpEnrichmentRow } from '../store/ip-repo.js';
import type { IpScope } from './ip-scope.js';
import { isoMicros } from '../store/time.js';

/** Version of the `enrichment` JSON shape we write into ip_inventory. */
export const ENRICHMENT_VERSION = '2';

export interface MergeInput {
  previous: Record<string, unknown>;
  /** Not 'public': no source is asked, the document says only where the address belongs. */
  scope?: IpScope;
  /** This run's answers, by source name. */
  results: ReadonlyMap<string, SourceResult<unknown>> | ((source: string) => SourceResult<unknown> | undefined);
  /** Sources asked about this IP this run (each owes it an answer). */
  asked: readonly string[];
  /** Sources owed an answer but not asked this run (`--offline`, no key): pending, not errors. */
  deferred?: string[];
  /** The typed columns and which sources may set them, best first. */
  claims: ColumnPlan;
}

export interface MergeOutput {
  enrichment: Record<string, unknown>;
  currentAsn: number | null;
  geoCountry: string | null;
  isScanner: boolean | null;
  /** Sources still owed an answer; the next refresh picks the IP up again. */
  pending: string[];
  /** Sources that failed for this IP this run (counted as errors). */
  failed: string[];
  asnAnsweredNow: boolean;
}

/** For each typed column, the sources that may set it, in precedence order (MaxMind's ASN before Cymru's). */
export interface ColumnPlan {
  asn: Array<{ source: string; from(doc: Record<string, unknown>): number | null }>;
  country: Array<{ source: string; from(doc: Record<string, unknown>): string | null }>;
  isScanner: Array<{ source: string; from(doc: Record<string, unknown>): boolean | null }>;
}

/** The column plan of these sources, from what each declares. */
export function columnPlan(sources: readonly Pick<Source, 'name' | 'columns'>[]): ColumnPlan {
  const pick = <K extends keyof ColumnPlan>(k: K): ColumnPlan[K] => sources
    .flatMap((s) => (s.columns?.[k] ? [{ source: s.name, ...s.columns[k]! }] : []))
    .sort((a, b) => a.precedence - b.precedence) as unknown as ColumnPlan[K];
  return { asn: pick('asn'), country: pick('country'), isScanner: pick('isScanner') };
}

const answered = (r?: SourceResult<unknown>) => !!r && (r.status === 'hit' || r.status === 'miss') && r.value !== null;

// A batch of answers shares one fetch time: convert it once.
let lastFetched = '';
let lastIso = '';
function fetchedIso(t: string): string {
  if (t !== lastFetched) {
    lastFetched = t;
    lastIso = isoMicros(t);
  }
  return lastIso;
}

function stamp(r: SourceResult<unknown>): Record<string, unknown> {
  return { ...(r.value as Record<string, unknown>), fetched_at: fetchedIso(r.fetchedAt), ...(r.version ? { source_version: r.version } : {}) };
}

function first<T>(claims: Array<{ from(doc: Record<string, unknown>): T | null }>, doc: Record<string, unknown>): T | null {
  for (const c of claims) {
    const v = c.from(doc);
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

/**
 * One IP's enrichment from this run's answers: each source's answer lands in `enrichment.<name>`;
 * a source that gave nothing this run keeps its previous sub-object; the typed columns come from
 * the sources that claim them, in their declared precedence (MaxMind first, Cymru fills the gaps).
 */
export function mergeIp(m: MergeInput): MergeOutput {
  if (m.scope && m.scope !== 'public') {
    // A Docker bridge or a LAN address says nothing about who attacked: no source, no ASN, no
    // country; `scope` lets every later query (and export) leave it out.
    return { enrichment: { scope: m.scope }, currentAsn: null, geoCountry: null, isScanner: null, pending: [], failed: [], asnAnsweredNow: false };
  }
  const get = typeof m.results === 'function' ? m.results : (n: string) => (m.results as ReadonlyMap<string, SourceResult<unknown>>).get(n);
  const enrichment: Record<string, unknown> = { ...m.previous };
  delete enrichment.pending;
  const pending: string[] = [];
  const failed: string[] = [];
  for (const name of m.asked) {
    const r = get(name);
    if (answered(r)) enrichment[name] = stamp(r!);
    // A miss without a record (GreyNoise for IPv6, MaxMind for an unknown address) is an answer too.
    else if (!r || r.status === 'pending' || r.status === 'error') {
      pending.push(name);
      // 'pending' means not asked (the source stopped for the run): owed, but not this IP's failure.
      if (r?.status === 'error') failed.push(name);
    }
  }
  for (const name of m.deferred ?? []) if (!pending.includes(name)) pending.push(name);
  let asnAnsweredNow = false;
  for (const c of m.claims.asn) {
    const r = get(c.source);
    if (answered(r) && c.from({ [c.source]: r!.value }) != null) asnAnsweredNow = true;
  }
  return {
    enrichment,
    currentAsn: first(m.claims.asn, enrichment),
    geoCountry: first(m.claims.country, enrichment),
    isScanner: first(m.claims.isScanner, enrichment),
    pending,
    failed,
    asnAnsweredNow,
  };
}

/** ", US" at the end of a Cymru AS name is the ASN's registration country (since 2016). */
export function countryFromAsName(name: string | null | undefined): string | null {
  const m = name ? /, ([A-Z]{2})$/.exec(name) : null;
  return m ? m[1] : null;
}

export interface AsnFacts {
  name: string | null;
  country: string | null;
  registry: string | null;
  details: CymruAsnValue | null;
}

export function asnFacts(asn: number, details: CymruAsnValue | undefined, enrichment: Record<string, unknown>): AsnFacts {
  const cy = enrichment.cymru as Partial<CymruIpValue> | undefined;
  const mm = enrichment.maxmind as Partial<MaxmindValue> | undefined;
  const cyName = cy?.asn === asn ? cy.as_name ?? null : null;
  const name = details?.as_name ?? cyName ?? (mm?.asn === asn ? mm.as_org ?? null : null);
  return {
    name,
    // Never the IP's geolocation (the original's defect): the ASN's own registry country only.
    country: details?.country ?? countryFromAsName(details?.as_name ?? cyName),
    registry: details?.registry ?? null,
    details: details ?? null,
  };
}

/** This run's answers for one IP (everything mergeIp needs but its previous document). */
export type IpAnswers = Omit<MergeInput, 'previous'>;

export interface ChunkMerge {
  rows: IpEnrichmentRow[];
  asns: AsnRow[];
  /** How each AS's counts move with this commit (IPs joining or leaving it). */
  deltas: Map<number, AsnDelta>;
  /** ASNs the chunk's IPs now belong to. */
  current: number[];
  /** Answered by every source they needed. */
  enriched: number;
  /** A source failed for them this run (they are pending too). */
  errors: number;
  /** Owed by a source not asked this run (stopped, offline, not configured), no failure. */
  pending: number;
  /** Private, loopback, … addresses: marked with their scope, nothing asked. */
  notPublic: number;
}

/** The rows of one commit: merged IPs, the ASNs they belong to, and the count moves between ASNs. */
export function mergeChunk(o: {
  candidates: IpCandidate[];
  previous: Map<string, Record<string, unknown>>;
  answers: (ip: string) => IpAnswers;
  asnDetails: Map<number, CymruAsnValue>;
  now: string;
  version: string;
}): ChunkMerge {
  const out: ChunkMerge = { rows: [], asns: [], deltas: new Map(), current: [], enriched: 0, errors: 0, pending: 0, notPublic: 0 };
  const asns = new Map<number, AsnRow>();
  const move = (asn: number, ips: number, sessions: number) => {
    const d = out.deltas.get(asn) ?? { ips: 0, sessions: 0 };
    d.ips += ips;
    d.sessions += sessions;
    out.deltas.set(asn, d);
  };
  const { now } = o;
  for (const c of o.candidates) {
    const answers = o.answers(c.ip);
    const merged = mergeIp({ previous: o.previous.get(c.ip) ?? {}, ...answers });
    if (answers.scope && answers.scope !== 'public') out.notPublic++;
    else if (merged.failed.length) out.errors++;
    else if (merged.pending.length) out.pending++;
    else out.enriched++;
    const asn = merged.currentAsn;
    out.rows.push({
      ip: c.ip, enrichment: merged.enrichment, currentAsn: asn, geoCountry: merged.geoCountry, isScanner: merged.isScanner,
      updatedAt: now, asnVerifiedAt: merged.asnAnsweredNow ? now : null, version: o.version,
      pending: pendingColumn(merged.pending),
    });
    // Counts follow the IP from its old AS (if any) to its new one, in the same commit.
    if (c.currentAsn !== asn) {
      if (c.currentAsn !== null) move(c.currentAsn, -1, -c.sessionCount);
      if (asn !== null) move(asn, 1, c.sessionCount);
    }
    if (asn === null) continue;
    const a = asns.get(asn);
    if (!a) {
      const facts = asnFacts(asn, o.asnDetails.get(asn), merged.enrichment);
      asns.set(asn, {
        asn, name: facts.name, country: facts.country, registry: facts.registry, firstSeen: c.firstSeen, lastSeen: c.lastSeen,
        enrichment: facts.details ? { cymru: { ...facts.details, fetched_at: now } } : null, updatedAt: now,
      });
    } else {
      if (c.firstSeen && (!a.firstSeen || c.firstSeen < a.firstSeen)) a.firstSeen = c.firstSeen;
      if (c.lastSeen && (!a.lastSeen || c.lastSeen > a.lastSeen)) a.lastSeen = c.lastSeen;
    }
  }
  out.asns = [...asns.values()];
  out.current = [...asns.keys()];
  return out;
}
