import type { CymruAsnValue, CymruIpValue } from './sources/cymru.js';
import type { GreyNoiseValue } from './sources/greynoise.js';
import type { MaxmindValue } from './sources/maxmind.js';
import type { SourceResult } from './sources/types.js';

/** Version of the `enrichment` JSON shape we write into ip_inventory. */
export const ENRICHMENT_VERSION = '2';

export interface MergeInput {
  previous: Record<string, unknown>;
  maxmind?: SourceResult<MaxmindValue>;
  /** Undefined when Cymru was not needed for this IP (MaxMind had its ASN). */
  cymru?: SourceResult<CymruIpValue>;
  cymruNeeded: boolean;
  greynoise?: SourceResult<GreyNoiseValue>;
  greynoiseEnabled: boolean;
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

const answered = (r?: SourceResult<unknown>) => !!r && (r.status === 'hit' || r.status === 'miss') && r.value !== null;

function stamp(r: SourceResult<unknown>): Record<string, unknown> {
  return { ...(r.value as Record<string, unknown>), fetched_at: r.fetchedAt, ...(r.version ? { source_version: r.version } : {}) };
}

/**
 * One IP's enrichment from this run's answers. A source that gave nothing this run keeps
 * its previous sub-object; MaxMind wins for ASN and country, Cymru fills the gaps.
 */
export function mergeIp(m: MergeInput): MergeOutput {
  const enrichment: Record<string, unknown> = { ...m.previous };
  delete enrichment.pending;
  const pending: string[] = [];
  const failed: string[] = [];
  if (answered(m.maxmind)) enrichment.maxmind = stamp(m.maxmind!);
  if (m.cymruNeeded) {
    if (answered(m.cymru)) enrichment.cymru = stamp(m.cymru!);
    else {
      pending.push('cymru');
      if (m.cymru?.status === 'error' || m.cymru?.status === 'pending') failed.push('cymru');
    }
  }
  if (m.greynoiseEnabled) {
    if (answered(m.greynoise)) enrichment.greynoise = stamp(m.greynoise!);
    else if (m.greynoise?.status === 'pending' || m.greynoise?.status === 'error') {
      pending.push('greynoise');
      if (m.greynoise.status === 'error') failed.push('greynoise');
    }
  }
  const mm = enrichment.maxmind as Partial<MaxmindValue> | undefined;
  const cy = enrichment.cymru as Partial<CymruIpValue> | undefined;
  const gn = enrichment.greynoise as Partial<GreyNoiseValue> | undefined;
  return {
    enrichment,
    currentAsn: mm?.asn ?? cy?.asn ?? null,
    geoCountry: mm?.country_code ?? cy?.country ?? null,
    isScanner: gn && typeof gn.noise === 'boolean' ? gn.noise : gn?.observed === false ? false : null,
    pending,
    failed,
    asnAnsweredNow: (answered(m.maxmind) && m.maxmind!.value!.asn != null) || (answered(m.cymru) && m.cymru!.value!.asn != null),
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
