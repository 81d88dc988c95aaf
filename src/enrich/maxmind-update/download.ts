/**
 * MaxMind's download protocol (docs/PROTOCOLS.md §3.5): permalinks with HTTP Basic auth that
 * redirect to a storage host. Redirects are followed by hand so the credentials go to the
 * permalink host only, never to the storage host. Nothing here retries: MaxMind counts failed
 * and repeated downloads against a small daily limit.
 */
import { createWriteStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { UserError, errorMessage } from '../../errors.js';
import { UpdateFailure } from './failure.js';

export interface MaxmindCredentials {
  accountId: string;
  licenseKey: string;
}

/** What a HEAD on the permalink says about the newest release. */
export interface RemoteRelease {
  /** YYYY-MM-DD from the dated file name in Content-Disposition, else from Last-Modified. */
  day: string | null;
  lastModified: Date | null;
  fileName: string | null;
  /** Identifies the release as the server describes it (file name and Last-Modified). */
  version: string;
}

export interface DownloadClientOptions {
  baseUrl: string;
  credentials: MaxmindCredentials;
  signal?: AbortSignal;
  /** For HEAD and checksum requests (default 60 s). */
  requestTimeoutMs?: number;
  /** For a whole archive download (default 30 min). */
  downloadTimeoutMs?: number;
  /** Archives larger than this are refused (default 1 GiB; GeoIP2 City is ~130 MB). */
  maxArchiveBytes?: number;
  userAgent?: string;
}

export type PermalinkSuffix = 'tar.gz' | 'tar.gz.sha256';

const MAX_REDIRECTS = 3;
const MAX_TEXT_BYTES = 4096;
const isRedirect = (status: number): boolean => status >= 300 && status < 400 && status !== 304;

/** `{base}/geoip/databases/{edition}/download?suffix=…` */
export function permalink(baseUrl: string, edition: string, suffix: PermalinkSuffix): URL {
  const url = new URL(`geoip/databases/${encodeURIComponent(edition)}/download`, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  url.searchParams.set('suffix', suffix);
  return url;
}

/** `attachment; filename=GeoLite2-City_20260113.tar.gz` → 2026-01-13. */
export function dayFromFileName(name: string | null): string | null {
  const m = name ? /_(\d{4})(\d{2})(\d{2})\.tar\.gz$/.exec(name) : null;
  if (!m) return null;
  const day = `${m[1]}-${m[2]}-${m[3]}`;
  const d = new Date(`${day}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(day) ? day : null;
}

function fileNameOf(contentDisposition: string | null): string | null {
  const m = contentDisposition ? /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(contentDisposition) : null;
  return m ? m[1].slice(0, 200) : null;
}

async function readText(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  while (size < MAX_TEXT_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    size += value.length;
  }
  await reader.cancel().catch(() => {});
  return Buffer.concat(parts).toString('utf8', 0, Math.min(size, MAX_TEXT_BYTES));
}

export class DownloadClient {
  readonly #opts: DownloadClientOptions;
  readonly #authorization: string;
  /** Archive downloads started in this run, per edition: never more than one. */
  readonly #downloaded = new Set<string>();

  constructor(opts: DownloadClientOptions) {
    this.#opts = opts;
    const { accountId, licenseKey } = opts.credentials;
    this.#authorization = `Basic ${Buffer.from(`${accountId}:${licenseKey}`).toString('base64')}`;
  }

  /** HEAD on the permalink: the newest release's date, without counting as a download. */
  async head(edition: string): Promise<RemoteRelease> {
    const hops = await this.#request(edition, 'tar.gz', 'HEAD', this.#opts.requestTimeoutMs ?? 60_000);
    const pick = (name: string): string | null => hops.map((r) => r.headers.get(name)).find((v) => v) ?? null;
    const fileName = fileNameOf(pick('content-disposition'));
    const lm = pick('last-modified');
    const lastModified = lm && !Number.isNaN(Date.parse(lm)) ? new Date(lm) : null;
    const day = dayFromFileName(fileName) ?? (lastModified ? lastModified.toISOString().slice(0, 10) : null);
    return { day, lastModified, fileName, version: `${fileName ?? '-'}|${lastModified?.toISOString() ?? '-'}` };
  }

  /** The `.sha256` companion's digest, or null when the server offers none (404). */
  async sha256(edition: string): Promise<string | null> {
    let hops: Response[];
    try {
      hops = await this.#request(edition, 'tar.gz.sha256', 'GET', this.#opts.requestTimeoutMs ?? 60_000);
    } catch (err) {
      if (err instanceof UpdateFailure && err.reason === 'not-found') return null;
      throw err;
    }
    const text = await readText(hops[hops.length - 1]);
    const m = /^([0-9a-fA-F]{64})(\s|$)/.exec(text.trim());
    if (!m) throw new UpdateFailure('checksum', 'the .sha256 file the server sent holds no SHA-256 digest');
    return m[1].toLowerCase();
  }

  /** Download the archive to `dest`; returns its size and SHA-256. At most once per edition per run. */
  async download(edition: string, dest: string): Promise<{ bytes: number; sha256: string }> {
    if (this.#downloaded.has(edition)) throw new UpdateFailure('http', 'already downloaded once in this run; not downloading again');
    this.#downloaded.add(edition);
    const hops = await this.#request(edition, 'tar.gz', 'GET', this.#opts.downloadTimeoutMs ?? 30 * 60_000);
    const res = hops[hops.length - 1];
    const max = this.#opts.maxArchiveBytes ?? 1 << 30;
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > max) {
      await res.body?.cancel();
      throw new UpdateFailure('too-big', `the archive is ${declared} bytes, more than the ${max}-byte limit`);
    }
    if (!res.body) throw new UpdateFailure('corrupt', 'the server sent an empty answer');
    const hash = createHash('sha256');
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > max) return done(new UpdateFailure('too-big', `the archive is more than the ${max}-byte limit`));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), meter, createWriteStream(dest, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      throw this.#networkOrDisk(err, 'the download');
    }
    return { bytes, sha256: hash.digest('hex') };
  }

  /** The permalink request and its redirects; every hop's answer, the last one 2xx. */
  async #request(edition: string, suffix: PermalinkSuffix, method: 'HEAD' | 'GET', timeoutMs: number): Promise<Response[]> {
    let url = permalink(this.#opts.baseUrl, edition, suffix);
    const hops: Response[] = [];
    const signal = this.#opts.signal ? AbortSignal.any([this.#opts.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    for (let hop = 0; ; hop++) {
      // Credentials go to the permalink only: the storage host gets a presigned URL instead.
      const headers: Record<string, string> = { 'user-agent': this.#opts.userAgent ?? 'cowrie-enrich' };
      if (hop === 0) headers.authorization = this.#authorization;
      let res: Response;
      try {
        res = await fetch(url, { method, headers, redirect: 'manual', signal });
      } catch (err) {
        throw this.#networkOrDisk(err, `the request to ${url.host}`);
      }
      hops.push(res);
      if (!isRedirect(res.status)) break;
      await res.body?.cancel();
      const location = res.headers.get('location');
      if (hop >= MAX_REDIRECTS) throw new UpdateFailure('http', `more than ${MAX_REDIRECTS} redirects from ${url.host}`);
      const next = location ? new URL(location, url) : null;
      if (!next || !/^https?:$/.test(next.protocol)) throw new UpdateFailure('http', `${url.host} answered HTTP ${res.status} without a usable redirect`);
      url = next;
    }
    const last = hops[hops.length - 1];
    if (!last.ok) throw await this.#httpFailure(last, url, hops.length > 1);
    return hops;
  }

  async #httpFailure(res: Response, url: URL, redirected: boolean): Promise<UpdateFailure> {
    const text = await readText(res).catch(() => '');
    const where = redirected ? `the storage host ${url.host}` : url.host;
    if (res.status === 429 || /download limit reached/i.test(text)) {
      return new UpdateFailure('limit', `download limit reached (HTTP ${res.status} from ${where}): MaxMind allows 30 GeoLite downloads a day; not retrying, the next scheduled run will try again`);
    }
    if (res.status === 401) return new UpdateFailure('auth', `authentication failed (HTTP 401 from ${where}): check the MaxMind account ID and license key`);
    if (res.status === 403) return new UpdateFailure('auth', `access denied (HTTP 403 from ${where}): this license key may not download this edition`);
    if (res.status === 404) return new UpdateFailure('not-found', `no such database (HTTP 404 from ${where}): check the edition name`);
    return new UpdateFailure('http', `HTTP ${res.status} from ${where}`);
  }

  #networkOrDisk(err: unknown, what: string): Error {
    if (err instanceof UpdateFailure) return err;
    if (this.#opts.signal?.aborted) return this.#opts.signal.reason instanceof UserError ? this.#opts.signal.reason : new UserError('interrupted', 130);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return new UpdateFailure('disk', `no space left on the disk while writing ${what}`);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new UpdateFailure('disk', `cannot write ${what}: ${code}`);
    if ((err as Error).name === 'TimeoutError') return new UpdateFailure('network', `${what} timed out`);
    const cause = (err as { cause?: unknown }).cause;
    return new UpdateFailure('network', `${what} failed: ${errorMessage(cause ?? err)}`);
  }
}
