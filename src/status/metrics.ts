/**
 * Prometheus metrics of live mode (`cowrie-loader follow --metrics HOST:PORT`), in the text format
 * prom-client writes: events and dead letters loaded, commit lag, and the enrichment figures
 * (queue per source, requests by source and outcome, quota left).
 */
import http from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { RefreshResult } from '../enrich/refresh.js';
import { UsageError, UserError, errorMessage } from '../errors.js';

/** The enrichment sources live mode reports on; every one is listed from the start (0 until used). */
export const ENRICH_SOURCES = ['maxmind', 'cymru', 'greynoise', 'virustotal'] as const;
export type EnrichSourceName = (typeof ENRICH_SOURCES)[number];

/** What the gauges read at each scrape. */
export interface LiveFigures {
  lagBytes: number;
  lagSeconds: number;
  filesFollowed: number;
  lastCommitAt: number | null;
  /** Per source: IPs or hashes waiting (pending markers in the database). */
  queue?: Partial<Record<string, number>>;
  /** Per source: requests left today (unset: no daily quota known). */
  quotaLeft?: Partial<Record<string, number>>;
}

export class FollowMetrics {
  readonly registry = new Registry();
  readonly #events: Counter<'outcome'>;
  readonly #deadLetters: Counter<'outcome'>;
  readonly #requests: Counter<'source' | 'outcome'>;

  constructor(figures: () => LiveFigures) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry });
    this.#events = new Counter({ name: 'cowrie_follow_events_total', help: 'Event lines loaded, by outcome (inserted, or duplicate of a stored event)', labelNames: ['outcome'], registers: [registry] });
    this.#deadLetters = new Counter({ name: 'cowrie_follow_dead_letters_total', help: 'Bad lines read, by outcome (new in dead_letter_events, or already known)', labelNames: ['outcome'], registers: [registry] });
    this.#requests = new Counter({ name: 'cowrie_enrich_requests_total', help: 'Enrichment requests, by source and outcome', labelNames: ['source', 'outcome'], registers: [registry] });
    for (const o of ['inserted', 'duplicate']) this.#events.inc({ outcome: o }, 0);
    for (const o of ['new', 'known']) this.#deadLetters.inc({ outcome: o }, 0);
    const gauge = (name: string, help: string, read: (f: LiveFigures) => number) => new Gauge({
      name, help, registers: [registry], collect() { this.set(read(figures())); },
    });
    gauge('cowrie_follow_lag_bytes', 'Bytes written to the followed files and not yet committed', (f) => f.lagBytes);
    gauge('cowrie_follow_commit_lag_seconds', 'How long the oldest line not yet committed has waited', (f) => f.lagSeconds);
    gauge('cowrie_follow_files', 'Files followed', (f) => f.filesFollowed);
    gauge('cowrie_follow_last_commit_timestamp_seconds', 'Unix time of the last commit (0: none yet)', (f) => (f.lastCommitAt ?? 0) / 1000);
    const perSource = (name: string, help: string, read: (f: LiveFigures) => Partial<Record<string, number>> | undefined) => new Gauge({
      name, help, labelNames: ['source'], registers: [registry],
      collect() {
        const v = read(figures()) ?? {};
        for (const s of new Set([...ENRICH_SOURCES, ...Object.keys(v)])) this.set({ source: s }, v[s] ?? 0);
      },
    });
    perSource('cowrie_enrich_queue_length', 'IPs or hashes waiting for a source (pending in the database)', (f) => f.queue);
    perSource('cowrie_enrich_quota_remaining', 'Requests left in the source\'s daily quota (0 when unknown or not used)', (f) => f.quotaLeft);
  }

  /** A commit's figures: events inserted and duplicate, dead letters new and already known. */
  committed(r: { eventsRead: number; inserted: number; duplicates: number; deadLetteredRead: number; deadLettered: number }): void {
    if (r.inserted) this.#events.inc({ outcome: 'inserted' }, r.inserted);
    if (r.duplicates) this.#events.inc({ outcome: 'duplicate' }, r.duplicates);
    if (r.deadLettered) this.#deadLetters.inc({ outcome: 'new' }, r.deadLettered);
    const known = r.deadLetteredRead - r.deadLettered;
    if (known > 0) this.#deadLetters.inc({ outcome: 'known' }, known);
  }

  request(source: string, outcome: string, n = 1): void {
    if (n > 0) this.#requests.inc({ source, outcome }, n);
  }

  /**
   * One live enrichment cycle's lookups. HTTP sources (GreyNoise, …): keys answered (hit, miss),
   * failed, answered from the cache or locally. Cymru: IPs answered, from the cache, failed batches.
   * VirusTotal: requests made, cache hits, failed files.
   */
  refreshed(r: RefreshResult): void {
    const ips = r.ips;
    if (ips) {
      for (const [source, c] of Object.entries(ips.counters)) {
        this.request(source, 'hit', c.hits);
        this.request(source, 'miss', c.misses);
        this.request(source, 'failed', c.failed);
        this.request(source, 'cache_hit', c.cacheHits);
        this.request(source, 'local', c.localAnswers);
      }
      const cymruCache = ips.cacheHits.cymru ?? 0;
      this.request('cymru', 'answered', ips.cymruEnriched - cymruCache);
      this.request('cymru', 'cache_hit', cymruCache);
      this.request('cymru', 'failed_batch', ips.cymruFailedBatches);
    }
    if (r.files) {
      this.request('virustotal', 'request', r.files.requests);
      this.request('virustotal', 'cache_hit', r.files.cacheHits);
      this.request('virustotal', 'failed', r.files.failed);
    }
  }
}

export interface ListenAddress { host: string; port: number }

/** `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces); port 0 picks a free one. */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--metrics must be HOST:PORT (e.g. 127.0.0.1:9464), got ${text}`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export interface MetricsServer {
  /** Where it listens, e.g. http://127.0.0.1:9464/metrics. */
  url: string;
  close(): Promise<void>;
}

/** Serve GET /metrics; anything else is 404. A port that cannot be bound is a usage error (exit 2). */
export async function serveMetrics(registry: Registry, addr: ListenAddress): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${errorMessage(err)}\n`),
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((ok, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) => fail(new UsageError(`cannot serve metrics on ${addr.host}:${addr.port}: ${err.code ?? errorMessage(err)}`)));
    server.listen(addr.port, addr.host, () => ok());
  });
  server.on('error', () => {}); // after listening: per-connection errors only
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new UserError('metrics server has no address', 1);
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${host}:${bound.port}/metrics`,
    close: () => new Promise((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}
