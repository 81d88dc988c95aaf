/**
 * Parsers for Team Cymru bulk whois answers (docs/PROTOCOLS.md §1.3–1.6).
 * Rows are matched to requests by their IP (or AS) column, never by position:
 * errors replace rows and duplicates add rows, so row order proves nothing.
 * Anything that is not a well-formed row is skipped, never thrown on.
 */
import { isIP } from 'node:net';

export interface CymruIpValue {
  /** The current origin AS (the first one listed); null for NA rows. */
  asn: number | null;
  /** All origin ASes, present only when there are several (MOAS or merged duplicate rows). */
  asns?: number[];
  as_name: string | null;
  prefix: string | null;
  /** RIR delegation country (not geolocation); null when blank. */
  country: string | null;
  registry: string | null;
  /** Prefix allocation date YYYY-MM-DD; null when blank. */
  allocated: string | null;
}

export interface CymruAsnValue {
  asn: number;
  as_name: string | null;
  /** The ASN's own registration country. */
  country: string | null;
  registry: string | null;
  allocated: string | null;
}

/** In a request `begin` is line 1 and `verbose` line 2, so the first query is line 3. */
export const FIRST_QUERY_LINE = 3;

const ASN_FIELD = /^(?:AS)?(\d{1,10})((?: +(?:AS)?\d{1,10})*)$/i;
const DATE_FIELD = /^\d{4}-\d{2}-\d{2}$/;
const ERROR_LINE = /^Error:.*\bline (\d+)/i;

/** One comparable form per address: IPv6 in canonical (RFC 5952) text, IPv4 as written. */
export function normaliseIp(ip: string): string | null {
  const text = ip.trim();
  const kind = isIP(text);
  if (kind === 4) return text;
  if (kind !== 6) return null;
  try {
    // The WHATWG URL parser canonicalises IPv6 hosts: lower case, no leading zeros, longest zero run compressed.
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return text.toLowerCase();
  }
}

/**
 * Complete lines only: the server ends every line with LF, so text after the last LF is a
 * row cut off by a dropped connection (its name may be truncated) and is not trusted.
 */
function completeLines(text: string): string[] {
  const lines = text.split('\n');
  lines.pop();
  return lines.map((l) => l.replace(/\r$/, ''));
}

function orNull(field: string | undefined, nullWord?: string): string | null {
  const v = (field ?? '').trim();
  if (v === '' || (nullWord !== undefined && v === nullWord)) return null;
  return v;
}

function parseAsnList(field: string): number[] | null {
  const m = ASN_FIELD.exec(field.trim());
  if (!m) return null;
  const nums = field.trim().split(/ +/).map((t) => Number(t.replace(/^AS/i, '')));
  return nums.every((n) => Number.isSafeInteger(n) && n > 0 && n <= 4_294_967_295) ? nums : null;
}

/** Split a row on `|`; the name is everything after the sixth (or fourth) separator, so a `|` in it survives. */
function splitRow(line: string, fixed: number): string[] | null {
  const parts = line.split('|');
  if (parts.length < fixed + 1) return null;
  return [...parts.slice(0, fixed).map((p) => p.trim()), parts.slice(fixed).join('|').trim()];
}

function parseIpRow(line: string): { ip: string; value: CymruIpValue } | null {
  const f = splitRow(line, 6);
  if (!f) return null;
  const [asField, ipField, prefix, cc, registry, allocated, name] = f;
  const ip = normaliseIp(ipField);
  if (ip === null) return null; // header line (`IP`), a 5-field AS row read as IP, or garbage
  let asns: number[] | null = [];
  if (asField !== 'NA') {
    asns = parseAsnList(asField);
    if (asns === null) return null;
  }
  if (cc !== '' && !/^[A-Z]{2}$/i.test(cc)) return null;
  if (allocated !== '' && !DATE_FIELD.test(allocated)) return null;
  const value: CymruIpValue = {
    asn: asns.length > 0 ? asns[0] : null,
    as_name: orNull(name, 'NA'),
    prefix: orNull(prefix, 'NA'),
    country: orNull(cc),
    registry: orNull(registry),
    allocated: orNull(allocated),
  };
  if (asns.length > 1) value.asns = asns;
  return { ip, value };
}

function addDistinctAsns(into: CymruIpValue, extra: number[]): void {
  const all = into.asns ?? (into.asn !== null ? [into.asn] : []);
  for (const a of extra) if (!all.includes(a)) all.push(a);
  if (all.length > 1) into.asns = all;
}

/** Map an `Error: … on line N.` line to the index of the query it answers, or -1. */
function errorIndex(line: string, count: number): number {
  const m = ERROR_LINE.exec(line);
  if (!m) return -1;
  const idx = Number(m[1]) - FIRST_QUERY_LINE;
  return idx >= 0 && idx < count ? idx : -1;
}

/**
 * Answers of a `begin / verbose / <ips> / end` request, keyed by the requested IP strings.
 * `requestedIps` must be the query lines exactly as sent, in order (for `Error:` line numbers).
 * An IP with neither a row nor an `Error:` line is absent: the caller treats it as unanswered.
 * A last line without its LF (connection dropped mid-row) is ignored.
 *
 * Duplicate rows for one IP: the first row's data wins and the other rows' distinct ASNs are
 * appended to `asns` (older servers sent one row per origin). Exception: a row with an ASN
 * replaces an earlier NA row, since a real answer beats "not announced".
 * A row beats an `Error:` line for the same IP.
 */
export function parseBulkResponse(text: string, requestedIps: string[]): Map<string, CymruIpValue | 'error'> {
  const byNorm = new Map<string, string>();
  for (const ip of requestedIps) {
    const n = normaliseIp(ip);
    if (n !== null && !byNorm.has(n)) byNorm.set(n, ip);
  }
  const out = new Map<string, CymruIpValue | 'error'>();
  for (const line of completeLines(text)) {
    if (line.trim() === '' || line.startsWith('Bulk mode')) continue;
    if (/^Error:/i.test(line)) {
      const idx = errorIndex(line, requestedIps.length);
      if (idx >= 0 && !out.has(requestedIps[idx])) out.set(requestedIps[idx], 'error');
      continue;
    }
    const row = parseIpRow(line);
    if (!row) continue;
    const key = byNorm.get(row.ip);
    if (key === undefined) continue; // a row for something we did not ask about
    const prev = out.get(key);
    if (prev === undefined || prev === 'error' || (prev.asn === null && row.value.asn !== null)) {
      out.set(key, row.value);
    } else if (row.value.asn !== null) {
      addDistinctAsns(prev, row.value.asns ?? [row.value.asn]);
    }
  }
  return out;
}

/** ASN answers plus the requested ASNs the server answered with an `Error:` line. */
export interface AsnParse {
  values: Map<number, CymruAsnValue>;
  errors: Set<number>;
}

/** Parse answers to `AS<n>` query lines; `requestedAsns` in the order they were sent. */
export function parseAsnResponseFull(text: string, requestedAsns: number[]): AsnParse {
  const wanted = new Set(requestedAsns);
  const values = new Map<number, CymruAsnValue>();
  const errors = new Set<number>();
  for (const line of completeLines(text)) {
    if (line.trim() === '' || line.startsWith('Bulk mode')) continue;
    if (/^Error:/i.test(line)) {
      const idx = errorIndex(line, requestedAsns.length);
      if (idx >= 0) errors.add(requestedAsns[idx]);
      continue;
    }
    const f = splitRow(line, 4);
    if (!f) continue;
    const [asField, cc, registry, allocated, name] = f;
    const asns = parseAsnList(asField);
    if (!asns || asns.length !== 1 || !wanted.has(asns[0]) || values.has(asns[0])) continue;
    if (cc !== '' && !/^[A-Z]{2}$/i.test(cc)) continue;
    if (allocated !== '' && !DATE_FIELD.test(allocated)) continue;
    values.set(asns[0], {
      asn: asns[0],
      as_name: orNull(name, 'NA'),
      country: orNull(cc),
      registry: orNull(registry),
      allocated: orNull(allocated),
    });
  }
  for (const a of values.keys()) errors.delete(a);
  return { values, errors };
}

/** ASN details keyed by ASN; ASNs without a row (unknown, `Error:` line, no answer) are absent. */
export function parseAsnResponse(text: string, requestedAsns: number[]): Map<number, CymruAsnValue> {
  return parseAsnResponseFull(text, requestedAsns).values;
}
