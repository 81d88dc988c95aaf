/**
 * A MaxMind download server simulator (docs/PROTOCOLS.md §3.5) serving the `.mmdb` files of a
 * folder (`cowrie-sim mmdb` output) the way download.maxmind.com does: permalinks with HTTP
 * Basic auth that redirect to presigned storage URLs, `.sha256` companions, Last-Modified and a
 * dated Content-Disposition, 401, 429 and the daily download limit, plus corrupt-archive and
 * wrong-checksum faults. It re-reads the folder on every request, so a test can publish a newer
 * build by rewriting a file.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Reader } from 'maxmind';
import { create } from 'tar';
import { DailyCounter, newStats, recordAnswer, startHttpSim } from './http-util.js';
import type { SimStats } from './http-util.js';

export const LIMIT_MESSAGE = 'Daily GeoIP database download limit reached';

export interface MaxmindSimFaults {
  /** Archives are garbled in transit (gzip fails to inflate). */
  corruptArchive?: boolean;
  /** The `.sha256` companion names a digest that does not match the archive. */
  wrongChecksum?: boolean;
  /** No `.sha256` companion (404), as for servers that do not offer one. */
  noSha256?: boolean;
  /** Every GET on a permalink gets HTTP 429, whatever the daily count. */
  tooManyRequests?: boolean;
}

export interface MaxmindSimOptions {
  /** Folder whose `<EDITION>.mmdb` files are the current releases. */
  dir: string;
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** When both are set, any other credentials get 401; otherwise any Basic credentials pass. */
  accountId?: string;
  licenseKey?: string;
  /** Archive downloads answered per UTC day (MaxMind GeoLite: 30); beyond → 429 with the limit message. */
  dailyLimit?: number;
  faults?: MaxmindSimFaults;
}

export interface MaxmindSimRequest {
  method: string;
  /** The path without its query (presigned signatures stay out of logs). */
  path: string;
  /** 'permalink' (download.maxmind.com) or 'storage' (the presigned redirect target). */
  host: 'permalink' | 'storage';
  suffix: string | null;
  /** Whether an Authorization header came with the request. */
  authorization: boolean;
  status: number;
}

export interface MaxmindSimStats extends SimStats {
  /** Archive downloads the limit counted (GETs on the tar.gz permalink that were redirected). */
  downloads: number;
  heads: number;
  requestLog: MaxmindSimRequest[];
  /** Every Authorization header value the storage path received (must stay empty). */
  storageAuthorizations: string[];
}

export interface MaxmindSim {
  url: string;
  port: number;
  stats: MaxmindSimStats;
  close(): Promise<void>;
  setOptions(partial: Partial<Omit<MaxmindSimOptions, 'port' | 'host' | 'dir'>>): void;
}

interface Release {
  edition: string;
  fileName: string;
  buildEpoch: Date;
  archive: Buffer;
}

const EDITION = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
const yyyymmdd = (d: Date): string => d.toISOString().slice(0, 10).replaceAll('-', '');

/** `<EDITION>_YYYYMMDD.tar.gz` holding `<EDITION>_YYYYMMDD/<EDITION>.mmdb`, as MaxMind packs it. */
export async function buildArchive(dir: string, edition: string): Promise<Release | null> {
  const file = `${edition}.mmdb`;
  let buf: Buffer;
  try {
    buf = await readFile(join(dir, file));
  } catch {
    return null;
  }
  const buildEpoch = new Reader(buf).metadata.buildEpoch;
  const folder = `${edition}_${yyyymmdd(buildEpoch)}`;
  const chunks: Buffer[] = [];
  for await (const chunk of create({ gzip: true, cwd: dir, portable: true, prefix: folder }, [file])) chunks.push(chunk as Buffer);
  const archive = Buffer.concat(chunks);
  return { edition, fileName: `${folder}.tar.gz`, buildEpoch, archive };
}

/** The gzip header survives, the deflate stream does not. */
function garble(archive: Buffer): Buffer {
  const out = Buffer.from(archive);
  for (let i = 20; i < out.length - 20; i++) out[i] ^= 0x5a;
  return out;
}

export async function startMaxmindSim(options: MaxmindSimOptions): Promise<MaxmindSim> {
  let opts: MaxmindSimOptions = { ...options };
  const stats: MaxmindSimStats = { ...newStats(), downloads: 0, heads: 0, requestLog: [], storageAuthorizations: [] };
  const daily = new DailyCounter();
  const secret = randomBytes(16);
  const cache = new Map<string, { key: string; release: Release }>();
  let baseUrl = '';

  const sign = (path: string): string => createHmac('sha256', secret).update(path).digest('hex');

  async function release(edition: string): Promise<Release | null> {
    const st = await stat(join(opts.dir, `${edition}.mmdb`)).catch(() => null);
    if (!st) return null;
    const key = `${st.mtimeMs}:${st.size}`;
    const hit = cache.get(edition);
    if (hit?.key === key) return hit.release;
    const built = await buildArchive(opts.dir, edition);
    if (built) cache.set(edition, { key, release: built });
    return built;
  }

  function authorized(req: IncomingMessage): boolean {
    const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const [id, ...rest] = Buffer.from(m[1], 'base64').toString('utf8').split(':');
    const key = rest.join(':');
    if (opts.accountId === undefined || opts.licenseKey === undefined) return id.length > 0 && key.length > 0;
    const want = Buffer.from(`${opts.accountId}:${opts.licenseKey}`);
    const got = Buffer.from(`${id}:${key}`);
    return want.length === got.length && timingSafeEqual(want, got);
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrived = Date.now();
    stats.requests++;
    stats.requestTimes.push(arrived);
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const storage = url.pathname.startsWith('/storage/');
    const suffix = url.searchParams.get('suffix');
    if (method === 'HEAD') stats.heads++;
    if (storage && req.headers.authorization) stats.storageAuthorizations.push(req.headers.authorization);
    const send = (status: number, body: Buffer | string, headers: Record<string, string> = {}): void => {
      recordAnswer(stats, arrived, status);
      stats.requestLog.push({ method, path: url.pathname, host: storage ? 'storage' : 'permalink', suffix, authorization: !!req.headers.authorization, status });
      const data = typeof body === 'string' ? Buffer.from(body) : body;
      res.writeHead(status, { 'Content-Length': String(data.length), ...headers });
      res.end(method === 'HEAD' ? undefined : data);
    };
    const text = (status: number, message: string): void => send(status, `${message}\n`, { 'Content-Type': 'text/plain; charset=utf-8' });
    if (method !== 'GET' && method !== 'HEAD') return text(405, 'Method not allowed');

    if (storage) {
      // /storage/<EDITION>_<YYYYMMDD>.tar.gz[.sha256]?X-Amz-Signature=…
      const sig = url.searchParams.get('X-Amz-Signature') ?? '';
      if (sig !== sign(url.pathname)) return text(403, 'SignatureDoesNotMatch');
      const m = /^\/storage\/([A-Za-z0-9-]+)_\d{8}\.tar\.gz(\.sha256)?$/.exec(url.pathname);
      const rel = m ? await release(m[1]) : null;
      if (!m || !rel || url.pathname !== `/storage/${rel.fileName}${m[2] ?? ''}`) return text(404, 'NoSuchKey');
      const dated = { 'Last-Modified': rel.buildEpoch.toUTCString(), 'Content-Disposition': `attachment; filename=${rel.fileName}${m[2] ?? ''}` };
      // A corrupt archive is published broken: its .sha256 matches the broken bytes.
      const body = opts.faults?.corruptArchive ? garble(rel.archive) : rel.archive;
      if (m[2]) {
        const digest = createHash('sha256').update(opts.faults?.wrongChecksum ? 'not the archive' : body).digest('hex');
        return send(200, `${digest}  ${rel.fileName}\n`, { ...dated, 'Content-Type': 'text/plain' });
      }
      return send(200, body, { ...dated, 'Content-Type': 'application/gzip' });
    }

    const m = /^\/geoip\/databases\/([^/]+)\/download$/.exec(url.pathname);
    if (!m) return text(404, 'Not found');
    if (!authorized(req)) return text(401, 'Invalid account ID or license key');
    const edition = decodeURIComponent(m[1]);
    if (suffix !== 'tar.gz' && suffix !== 'tar.gz.sha256') return text(400, 'Invalid suffix');
    const rel = EDITION.test(edition) ? await release(edition) : null;
    if (!rel) return text(404, 'Database edition not found');
    if (suffix === 'tar.gz.sha256' && opts.faults?.noSha256) return text(404, 'Not found');
    if (method === 'GET' && opts.faults?.tooManyRequests) return text(429, 'Too many requests');
    if (method === 'GET' && suffix === 'tar.gz') {
      if (!daily.tryTake(opts.dailyLimit, 1, arrived)) return text(429, LIMIT_MESSAGE);
      stats.downloads++;
    }
    const target = `/storage/${rel.fileName}${suffix === 'tar.gz.sha256' ? '.sha256' : ''}`;
    return send(302, '', { Location: `${baseUrl}${target}?X-Amz-Expires=3600&X-Amz-Signature=${sign(target)}` });
  };

  const server = await startHttpSim(options.port ?? 0, handle, options.host);
  baseUrl = server.url;
  return {
    url: server.url,
    port: server.port,
    stats,
    close: server.close,
    setOptions(partial) {
      opts = { ...opts, ...partial };
    },
  };
}
