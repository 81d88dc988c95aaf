/**
 * The one shape of an enrichment source (docs/ARCHITECTURE.md, "Sources"). A source file exports
 * one `Source` object: what it looks up, its declared limits, TTLs and settings, which keys it
 * wants given earlier answers, how it is opened, and how its answer lands in the stored record.
 * Everything around a lookup — cache, quota, rate, retries, stop rules, pending markers, counters,
 * Ctrl-C — belongs to src/enrich/runner.ts; a source holds no timer, retry loop, database code
 * or environment read.
 */
import type { Logger } from '../../log.js';
import { parseRetryAfter, type AnswerVerdict, type HttpAnswer } from '../rate-limit.js';
import type { SettingValues, Settings } from '../../config/setting.js';
import type { SourceResult } from './types.js';

/** What a source takes as keys. */
export type KeyKind = 'ip' | 'sha256';

/** Declared limits; the runner builds its rate limiter, quota gate and retry policy from them. */
export interface SourceLimits {
  /** At most `perWindow` requests in any `windowMs` window, as the server sees it, for all workers on the database together. */
  rate: { perWindow: number; windowMs: number };
  /** Requests in flight at once. */
  concurrency: number;
  /** Keys per request (1: one request per key). */
  batchSize: number;
  /** Calls per UTC day, counted in the database (api_quota) and shared by every process; null: none. */
  dailyQuota: number | null;
  /** Extra attempts after a 5xx, network error or timeout. */
  retries: number;
  /** Extra attempts after a rate-limit answer. */
  throttleRetries: number;
  /** First retry backoff (doubles each time). */
  backoffMs: number;
  /** Longest Retry-After honoured; a longer one fails the key for this run. */
  maxRetryAfterMs: number;
  /** Deadline for one whole HTTP exchange. */
  timeoutMs: number;
  /** Retry a failed key only when a rate slot is free at once (slow APIs: never hold up the others). */
  retryOnlyWhenFree?: boolean;
  /** Keys failing in a row (after retries) that stop the source for the run; the rest stays pending. */
  maxFailuresInRow: number;
}

/** A rate in requests per second as a sliding window (below 1/s: one request per 1/rate s). */
export function perSecond(rate: number): SourceLimits['rate'] {
  return { perWindow: rate >= 1 ? Math.floor(rate) : 1, windowMs: rate >= 1 ? 1000 : 1000 / rate };
}

/** One HTTP request, built by the source; the runner sends it under its limits and deadline. */
export interface HttpRequest {
  url: string;
  method?: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

/**
 * The protocol of an HTTP source, per run: build a request for some keys, classify an answer
 * (typed: auth / quota / throttle / transient / done), read an answer into one result per key.
 */
export interface HttpHandle<V> {
  readonly kind: 'http';
  /** Answered here without a request (e.g. GreyNoise for IPv6): not paid, not cached; null: ask. */
  local?(key: string): SourceResult<V> | null;
  /** Keys the source cannot take at all (not a SHA-256, …): an error result, never sent. */
  invalid?(key: string): string | null;
  request(keys: string[]): HttpRequest;
  judge(answer: HttpAnswer): AnswerVerdict;
  /** One result per key (in any order). */
  read(keys: string[], answer: HttpAnswer): SourceResult<V>[];
  /** Extra detail for the rejected-key line, e.g. ` WrongCredentialsError`. */
  detail?(answer: HttpAnswer): string;
  /** What a 401/403 rejects, for its log line: `the API key` unless said otherwise. */
  readonly credential?: string;
  /** Calls left today by the provider's own count (rate-limit headers); 0 stops the source for the day. */
  remaining?(answer: HttpAnswer): number | null;
  /** Text never shown (the API key): replaced by *** in every reason and log line. */
  readonly secrets: string[];
  /** Provenance stamped on every result (API version). */
  readonly version?: string;
  close(): void;
}

/** Offline sources (MaxMind): a synchronous lookup of a whole list. */
export interface LocalHandle<V> {
  readonly kind: 'local';
  lookup(keys: readonly string[]): SourceResult<V>[];
  close(): void;
}

/**
 * Bulk sources (Team Cymru's whois): the client batches, retries and splits by the protocol's own
 * rules (one TCP exchange per batch) and reports each batch as it ends.
 */
export interface BulkHandle<V, D = unknown> {
  readonly kind: 'bulk';
  lookupBatches(keys: string[], onBatch: (b: BulkBatch<V>) => Promise<void>): Promise<{ results: SourceResult<V>[]; failedBatches: number; stoppedEarly: boolean }>;
  /** Details of related records (Cymru: the registry record of each new ASN). */
  details?(keys: number[]): Promise<Map<number, D>>;
  readonly stopped: boolean;
  close(): void;
}

export interface BulkBatch<V> {
  index: number;
  total: number;
  ok: boolean;
  enriched: number;
  results: SourceResult<V>[];
  error?: string;
}

/** What a source's answer sets in ip_inventory's typed columns. Lower precedence wins. */
export interface ColumnClaims {
  asn?: { precedence: number; from(doc: Record<string, unknown>): number | null };
  country?: { precedence: number; from(doc: Record<string, unknown>): string | null };
  isScanner?: { precedence: number; from(doc: Record<string, unknown>): boolean | null };
}

/**
 * At most N connections to a service across every worker on the database (Team Cymru: 2). A
 * source that opens connections itself takes one around each; it never learns how they are kept.
 */
export interface ConnectionGate {
  /** Waits for a free connection; resolves to the function that gives it back (call it once, after closing). */
  acquire(): Promise<() => Promise<void>>;
}

export interface OpenContext {
  logger: Logger;
  now: () => Date;
  /** Held around each connection the source opens itself (bulk sources); absent: only the source's own bound. */
  connectionGate?: ConnectionGate;
}

/** Earlier answers for a key, by source name (for `wants`). */
export type EarlierAnswers = (source: string) => SourceResult<unknown> | undefined;

export type AnyHandle<V> = HttpHandle<V> | LocalHandle<V> | BulkHandle<V>;

export interface Source<V = unknown, S extends Settings = Settings, H extends AnyHandle<V> = AnyHandle<V>> {
  /** As in `--sources`, `enrichment.<name>`, `enrichment_pending`, status files and the cache. */
  readonly name: string;
  /** As in log lines: `GreyNoise`. */
  readonly title: string;
  readonly keys: KeyKind;
  readonly network: boolean;
  /** In the default `--sources` list. */
  readonly defaultOn: boolean;
  /** Its settings, declared once (flag, env, config key, default, schema, secret, help). */
  readonly settings: S;
  /**
   * A setting without which the source cannot be asked (an API key, a contact address).
   * `pending`: keys stay owed until a run has it (a notice says so); `off`: the source is simply
   * not asked unless named in `--sources` (then it is pending, with the notice).
   */
  readonly requires?: { setting: keyof S & string; shown: string; whenMissing: 'pending' | 'off'; until: string };
  /** Fresh for this long, in seconds. */
  readonly ttl: { hitSeconds: number; missSeconds: number };
  limits(o: SettingValues<S>): SourceLimits;
  /** Sources whose answers this one waits for. */
  readonly after?: readonly string[];
  /** Whether this source owes `key` an answer, given earlier ones (never asked for non-public IPs). */
  wants?(key: string, earlier: EarlierAnswers): boolean;
  /** Keys answered without asking (its handle's `local`): not owed when the source cannot be asked. */
  answeredLocally?(key: string): boolean;
  /** Columns its answer may set, with their precedence. Its sub-object always lands in `enrichment.<name>`. */
  readonly columns?: ColumnClaims;
  open(o: SettingValues<S>, ctx: OpenContext): H | Promise<H>;
}

/** Keeps a source's literal settings type (so the config derives typed options from it). */
export function defineSource<V, S extends Settings, H extends AnyHandle<V>>(s: Source<V, S, H>): Source<V, S, H> {
  return s;
}

/** `IPs` / `files`: how log lines name a source's keys. */
export function keyNoun(kind: KeyKind): string {
  return kind === 'ip' ? 'IPs' : 'files';
}

/** A Retry-After this long (beyond any wait a run makes) means "not today": the source stops for the day (its keys stay pending). */
export const DAILY_STOP_MS = 15 * 60_000;

/** A 429: wait and retry, or, when the wait reaches into hours, a spent daily allowance. */
export function throttleVerdict(a: HttpAnswer): AnswerVerdict {
  const wait = parseRetryAfter(a.headers.get('retry-after'));
  return wait !== null && wait >= DAILY_STOP_MS ? { kind: 'quota' } : { kind: 'throttle', waitMs: wait };
}

/** Attacker-influenced text from an API, bounded: a string of at most `max` characters, else null. */
export function boundedText(v: unknown, max = 256): string | null {
  return typeof v === 'string' ? v.slice(0, max) : null;
}

/** A list of bounded strings (at most `items`), anything else dropped. */
export function boundedTexts(v: unknown, items = 100, max = 256): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, items).map((x) => x.slice(0, max)) : [];
}

/** A finite number, else null. */
export function finiteNumber(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** JSON text, or undefined when it is not JSON. */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
