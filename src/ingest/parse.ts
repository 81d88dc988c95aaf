/**
 * One Cowrie JSON line → a normalised event or a dead letter. Every eventid is accepted; lines
 * that are not JSON objects with an eventid and a usable timestamp, that exceed a per-line bound
 * (nesting, value count), or whose identifiers (session id, shasum) are not what Cowrie writes
 * are dead-lettered, so no single line can fail a batch.
 * Strings are cleaned of what PostgreSQL rejects (NUL, lone surrogates) so both stores take them;
 * the payload's `_cleaned` names the fields that were changed.
 */
import { hash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { canonicalEvent, cleanText, LineLimit, NEEDS_CLEAN } from './canonical.js';
import { baseName, clientVersion, nonEmpty, num, protocolOf, str, urlFileName } from './fields.js';
import type { LineRecord } from './reader.js';

export { cleanText, MAX_JSON_DEPTH, MAX_JSON_VALUES } from './canonical.js';

export type DeadLetterReason =
  | 'invalid_json'
  | 'not_an_object'
  | 'missing_eventid'
  | 'missing_timestamp'
  | 'bad_timestamp'
  | 'line_too_long'
  /** The file's last line has no newline, is not a complete JSON value, and the file is finished. */
  | 'truncated_line'
  /** Nested deeper than MAX_JSON_DEPTH (canonical.ts). */
  | 'too_deep'
  /** More than MAX_JSON_VALUES keys and array elements in all. */
  | 'too_many_values'
  /** A number outside the double range (JSON.parse makes it Infinity, which JSON cannot store). */
  | 'number_out_of_range'
  /** `eventid` is not up to 128 printable ASCII characters (Cowrie's are `cowrie.<word>.<word>`). */
  | 'bad_eventid'
  /** `session` is not a short token of letters, digits, `-` and `_` (Cowrie writes 12 hex digits). */
  | 'bad_session_id'
  /** `shasum` is not 64 hex digits (SHA-256). */
  | 'bad_shasum';

/**
 * Session ids: Cowrie writes the first 12 hex digits of a UUID4; other tools write 32 hex digits
 * or a dashed UUID. Up to 64 of these characters keeps every btree entry small.
 */
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SHA256_HEX = /^[0-9A-Fa-f]{64}$/;
/** Any event type is stored, but as a short printable name: it is shown in reports and terminals. */
const EVENT_ID = /^[\x21-\x7e]{1,128}$/;
/** The `_cleaned` entry for raw NUL bytes that sat outside any string (their field is unknown). */
export const CLEANED_OUTSIDE_FIELDS = '*';

export interface ParseContext {
  /** The file the line came from (for dead letters and provenance; never part of the hash). */
  source: string;
  /** Byte offset of the line in the decompressed file. */
  offset: number;
  /** Sensor name to use instead of the event's `sensor` field. */
  sensorOverride?: string;
}

export interface ParsedEvent {
  kind: 'event';
  eventType: string;
  /** ISO-8601 UTC with the original fractional digits, e.g. 2024-01-05T17:09:34.399033Z. */
  timestamp: string;
  epochMs: number;
  sessionId: string | null;
  srcIp: string | null;
  sensor: string | null;
  /** The cleaned event as canonical JSON (keys sorted). */
  payload: string;
  /** sha256 hex of `payload`: same event content → same hash, wherever the line was read. */
  payloadHash: string;
  username: string | null;
  password: string | null;
  input: string | null;
  url: string | null;
  shasum: string | null;
  /** Basename of `filename` (uploads), else the URL's last path segment, else `destfile`, else `outfile`. */
  filename: string | null;
  /** The client version; Cowrie 2.0's Python bytes form `b'SSH-2.0-Go'` is unwrapped. */
  version: string | null;
  hassh: string | null;
  /** `protocol`, else derived from Cowrie 1.x's `system` (transport/factory names): ssh | telnet. */
  protocol: string | null;
  durationSeconds: number | null;
  /** Top-level fields whose text was cleaned (also stored in the payload as `_cleaned`). */
  cleaned: string[];
  loginSuccess: boolean;
  loginFailed: boolean;
  source: string;
  offset: number;
}

export interface DeadLetter {
  kind: 'dead_letter';
  reason: DeadLetterReason;
  /** One line, at most ~200 characters. */
  detail: string;
  /** The line as text, cleaned like event strings. */
  rawLine: string;
  /** sha256 hex of the raw bytes. */
  rawHash: string;
  source: string;
  offset: number;
}

export function isDeadLetter(r: ParsedEvent | DeadLetter): r is DeadLetter {
  return r.kind === 'dead_letter';
}

const sha256 = (data: string | Buffer): string => hash('sha256', data, 'hex');

const dayCache = new Map<string, number>();

function digits(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/**
 * The common case, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, without a regex; epoch ms or -1 when the
 * string is not exactly that shape (the general parser then decides).
 */
function fastUtc(s: string): number {
  const len = s.length;
  if ((len !== 20 && (len < 22 || len > 30)) || s.charCodeAt(len - 1) !== 90 /* Z */ || s.charCodeAt(10) !== 84 /* T */) return -1;
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58 || (len > 20 && s.charCodeAt(19) !== 46)) return -1;
  const dayKey = s.slice(0, 10);
  let day = dayCache.get(dayKey);
  if (day === undefined) {
    const m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(dayKey);
    if (m === null) return -1;
    const y = +m[1], mo = +m[2], d = +m[3];
    const leap = mo === 2 && (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0));
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > DAYS[mo - 1] + (leap ? 1 : 0)) return -1;
    day = Date.UTC(y, mo - 1, d);
    if (dayCache.size > 10_000) dayCache.clear();
    dayCache.set(dayKey, day);
  }
  const h = digits(s, 11, 13), mi = digits(s, 14, 16), sec = digits(s, 17, 19);
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59) return -1;
  let ms = 0;
  if (len > 20) {
    const f = digits(s, 20, len - 1);
    if (f < 0) return -1;
    ms = len - 1 - 20 >= 3 ? digits(s, 20, 23) : f * (len - 21 === 1 ? 100 : 10);
  }
  return day + h * 3_600_000 + mi * 60_000 + sec * 1000 + ms;
}

const TS_RE = /^(\d{4})-(\d\d)-(\d\d)([T ])(\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?(Z|z|[+-]\d\d(?::?\d\d)?)?$/;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Cowrie writes `…%fZ` or, off UTC, `…%f+hhmm`. Offsets are converted to UTC keeping the
 * fractional digits; a zone-less timestamp is taken as UTC. Returns null when unusable.
 */
export function normaliseTimestamp(s: string): { iso: string; epochMs: number } | null {
  const fast = fastUtc(s);
  if (fast >= 0) return { iso: s, epochMs: fast };
  const m = TS_RE.exec(s);
  if (m === null) return null;
  const y = +m[1], mo = +m[2], d = +m[3], h = +m[5], mi = +m[6], sec = +m[7];
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59) return null;
  const leap = mo === 2 && (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0));
  if (d > DAYS[mo - 1] + (leap ? 1 : 0)) return null;
  const frac = m[8];
  const ms = frac === undefined ? 0 : +(frac.length >= 3 ? frac.slice(0, 3) : frac.padEnd(3, '0'));
  const zone = m[9];
  let offMin = 0;
  if (zone !== undefined && zone !== 'Z' && zone !== 'z') {
    const oh = +zone.slice(1, 3);
    const om = zone.length > 3 ? +zone.slice(zone.length - 2) : 0;
    if (oh > 23 || om > 59) return null;
    offMin = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const secondsMs = Date.UTC(y, mo - 1, d, h, mi, sec) - offMin * 60_000;
  const epochMs = secondsMs + ms;
  // Fast path: already canonical UTC.
  if (zone === 'Z' && m[4] === 'T' && (frac === undefined || s[19] === '.')) return { iso: s, epochMs };
  const iso = new Date(secondsMs).toISOString().slice(0, 19) + (frac === undefined ? '' : `.${frac}`) + 'Z';
  return { iso, epochMs };
}

/** Canonical IPv6 groups → RFC 5952 text (lower case, longest zero run of 2+ compressed). */
function formatIpv6(g: number[]): string {
  let bestStart = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestStart === -1) return g.map((x) => x.toString(16)).join(':');
  const head = g.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const tail = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${head}::${tail}`;
}

/** Dotted quad with no leading zeros, checked by hand (net.isIPv4 is slower). */
function isPlainIpv4(s: string): boolean {
  const len = s.length;
  if (len < 7 || len > 15) return false;
  let parts = 0, n = 0, nd = 0, first = 0;
  for (let i = 0; i <= len; i++) {
    const c = i === len ? 46 : s.charCodeAt(i);
    if (c === 46) {
      if (nd === 0 || n > 255 || (nd > 1 && first === 0)) return false;
      parts++;
      n = nd = 0;
    } else {
      const d = c - 48;
      if (d < 0 || d > 9 || nd === 3) return false;
      if (nd === 0) first = d;
      n = n * 10 + d;
      nd++;
    }
  }
  return parts === 4;
}

function canonicalIp(raw: string): string | null {
  let s = raw.trim();
  if (isIPv4(s)) return s;
  const pct = s.indexOf('%');
  if (pct !== -1) s = s.slice(0, pct); // zone ids mean nothing off-link
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (!isIPv6(s)) return null;
  let text = s.toLowerCase();
  let v4: number[] | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    v4 = text.slice(lastColon + 1).split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [headText, tailText] = text.split('::');
  const head = headText ? headText.split(':') : [];
  const tail = tailText !== undefined && tailText !== '' ? tailText.split(':') : [];
  const fill = tailText !== undefined ? 8 - head.length - tail.length : 0;
  const g = [...head.map((x) => parseInt(x, 16)), ...new Array<number>(fill).fill(0), ...tail.map((x) => parseInt(x, 16))];
  if (v4 !== null) {
    g[6] = (v4[0] << 8) | v4[1];
    g[7] = (v4[2] << 8) | v4[3];
  }
  // IPv4-mapped (::ffff:a.b.c.d) is the IPv4 address.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
  }
  return formatIpv6(g);
}

// Source IPs repeat a lot; remembering recent answers keeps canonicalisation off the profile.
const ipCache = new Map<string, string | null>();

/** Canonical text of an IPv4/IPv6 address (mapped IPv4 → IPv4), or null when not an IP. */
export function normaliseIp(raw: unknown): string | null {
  if (typeof raw !== 'string' || raw === '') return null;
  if (isPlainIpv4(raw)) return raw;
  const hit = ipCache.get(raw);
  if (hit !== undefined) return hit;
  const ip = canonicalIp(raw);
  if (ipCache.size >= 50_000) ipCache.clear();
  ipCache.set(raw, ip);
  return ip;
}

function oneLine(s: string): string {
  const t = s.replace(/[\r\n\t]+/g, ' ');
  return t.length > 200 ? `${t.slice(0, 197)}...` : t;
}

function deadLetter(reason: DeadLetterReason, detail: string, text: string, raw: string | Buffer, ctx: ParseContext): DeadLetter {
  return {
    kind: 'dead_letter',
    reason,
    detail: oneLine(detail),
    rawLine: cleanText(text),
    rawHash: sha256(raw),
    source: ctx.source,
    offset: ctx.offset,
  };
}

/** Dead letter for a line the reader flagged as too long (only its prefix is at hand). */
export function tooLongDeadLetter(rec: LineRecord, source: string): DeadLetter {
  const text = rec.line.toString('utf8');
  return {
    kind: 'dead_letter',
    reason: 'line_too_long',
    detail: `line of ${rec.length} bytes exceeds the limit; first ${rec.line.length} bytes kept`,
    rawLine: cleanText(text),
    rawHash: sha256(rec.line),
    source,
    offset: rec.offset,
  };
}

/** Copytruncate leaves a run of NUL bytes where the old file's content used to be. */
const LEADING_NULS = /^\0+/;

/**
 * JSON text for a line with raw NUL bytes: inside a string a NUL becomes its escape, so the walk
 * cleans it and names its field; a NUL anywhere else makes the line unparseable as it is, so then
 * every NUL is dropped and `*` stands for the unknown field.
 */
function parseWithNuls(text: string): { value: unknown; outside: boolean } {
  try {
    return { value: JSON.parse(text.replaceAll('\0', '\\u0000')), outside: false };
  } catch {
    return { value: JSON.parse(text.replaceAll('\0', '')), outside: true };
  }
}

/** Parse one log line (bytes or text). Invalid UTF-8 becomes U+FFFD; NUL characters are removed and recorded. */
export function parseLine(input: string | Buffer, ctx: ParseContext): ParsedEvent | DeadLetter {
  let text = typeof input === 'string' ? input : input.toString('utf8');
  if (text.charCodeAt(0) === 0) text = text.replace(LEADING_NULS, '');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark before the first line
  const rawNuls = text.indexOf('\0') !== -1;
  let value: unknown;
  let nulsOutside = false;
  try {
    if (rawNuls) ({ value, outside: nulsOutside } = parseWithNuls(text));
    else value = JSON.parse(text);
  } catch (err) {
    return deadLetter('invalid_json', err instanceof Error ? err.message : String(err), text, input, ctx);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const what = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    return deadLetter('not_an_object', `JSON value is ${what}, not an object`, text, input, ctx);
  }
  let canonical: { event: Record<string, unknown>; cleaned: string[] };
  try {
    const clean = rawNuls || (text.indexOf('\\u') !== -1 && NEEDS_CLEAN.test(text));
    canonical = canonicalEvent(value as Record<string, unknown>, clean);
  } catch (err) {
    if (err instanceof LineLimit) return deadLetter(err.reason, err.detail, text, input, ctx);
    throw err;
  }
  const ev = canonical.event;
  const cleaned = nulsOutside ? [...canonical.cleaned, CLEANED_OUTSIDE_FIELDS].sort() : canonical.cleaned;
  const eventType = ev.eventid;
  if (typeof eventType !== 'string' || eventType === '') {
    const detail = eventType === undefined ? 'no eventid field' : `eventid is ${JSON.stringify(eventType)}`;
    return deadLetter('missing_eventid', detail, text, input, ctx);
  }
  if (!EVENT_ID.test(eventType)) return deadLetter('bad_eventid', `eventid is ${describeValue(eventType)}, not up to 128 printable ASCII characters`, text, input, ctx);
  const rawTs = ev.timestamp;
  if (rawTs === undefined || rawTs === null || rawTs === '') {
    return deadLetter('missing_timestamp', 'no timestamp field', text, input, ctx);
  }
  const ts = typeof rawTs === 'string' ? normaliseTimestamp(rawTs) : null;
  if (ts === null) return deadLetter('bad_timestamp', `unparseable timestamp ${JSON.stringify(rawTs)}`, text, input, ctx);
  const session = ev.session;
  if (session !== undefined && session !== null && session !== '' && !(typeof session === 'string' && SESSION_ID.test(session))) {
    return deadLetter('bad_session_id', `session is ${describeValue(session)}, not up to 64 letters, digits, - or _`, text, input, ctx);
  }
  const shasum = ev.shasum;
  if (shasum !== undefined && shasum !== null && shasum !== '' && !(typeof shasum === 'string' && SHA256_HEX.test(shasum))) {
    return deadLetter('bad_shasum', `shasum is ${describeValue(shasum)}, not 64 hex digits`, text, input, ctx);
  }

  if (cleaned.length > 0) ev._cleaned = cleaned;
  const payload = JSON.stringify(ev);
  const duration = num(ev.duration);
  const durationMs = duration === null ? num(ev.duration_ms) : null;
  return {
    kind: 'event',
    eventType,
    timestamp: ts.iso,
    epochMs: ts.epochMs,
    sessionId: typeof session === 'string' && session !== '' ? session : null,
    srcIp: normaliseIp(ev.src_ip),
    sensor: ctx.sensorOverride !== undefined ? ctx.sensorOverride || null : nonEmpty(ev.sensor),
    payload,
    payloadHash: sha256(payload),
    username: str(ev.username),
    password: str(ev.password),
    input: str(ev.input),
    url: nonEmpty(ev.url),
    shasum: typeof shasum === 'string' && shasum !== '' ? shasum.toLowerCase() : null,
    filename: baseName(ev.filename) ?? urlFileName(ev.url) ?? baseName(ev.destfile) ?? baseName(ev.outfile),
    version: clientVersion(ev.version),
    hassh: nonEmpty(ev.hassh),
    protocol: protocolOf(ev.protocol, ev.system),
    durationSeconds: duration ?? (durationMs === null ? null : durationMs / 1000),
    cleaned,
    loginSuccess: eventType === 'cowrie.login.success',
    loginFailed: eventType === 'cowrie.login.failed',
    source: ctx.source,
    offset: ctx.offset,
  };
}

/** A short, one-line description of a hostile value for a dead letter's detail. */
function describeValue(v: unknown): string {
  if (typeof v !== 'string') return `a ${Array.isArray(v) ? 'array' : typeof v}`;
  return v.length > 40 ? `${v.length} characters long` : JSON.stringify(v);
}
