/**
 * Pass 1: MaxMind City and ASN databases, read offline with the maxmind npm reader.
 * One missing, compressed, corrupt or old database is a warning: without the ASN database every
 * IP simply needs Cymru (Pass 2). A configured directory that does not exist or holds neither
 * database is a usage error (exit 2): the user asked for MaxMind and would silently get nothing.
 * No directory configured at all is a warning; the pipeline then leaves MaxMind pending.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Reader, validate, type AsnResponse, type CityResponse } from 'maxmind';
import { z } from 'zod';
import { errorMessage, UsageError } from '../../errors.js';
import { apiUrl, optStr } from '../../config/setting.js';
import type { Logger } from '../../log.js';
import { defineSource, type LocalHandle } from './source.js';
import { DAY_SECONDS, type SourceResult } from './types.js';

export const MAXMIND_SOURCE_NAME = 'maxmind';
export const MAXMIND_TTL_SECONDS = 30 * DAY_SECONDS;
/** A database built longer ago than this earns a warning. */
export const MAXMIND_STALE_DAYS = 30;

export interface MaxmindValue {
  country_code: string | null;
  country_name: string | null;
  city: string | null;
  latitude: number | null;
  longitude: number | null;
  accuracy_radius: number | null;
  asn: number | null;
  as_org: string | null;
  /** Build date (YYYY-MM-DD) of the database that was consulted; null when not loaded. */
  city_db_build: string | null;
  asn_db_build: string | null;
}

export type MaxmindKind = 'city' | 'asn';

export interface MaxmindDatabaseInfo {
  kind: MaxmindKind;
  file: string;
  path: string;
  databaseType: string;
  buildEpoch: Date;
  /** YYYY-MM-DD (UTC). */
  buildDate: string;
  stale: boolean;
}

export interface MaxmindInfo {
  dir: string | null;
  city: MaxmindDatabaseInfo | null;
  asn: MaxmindDatabaseInfo | null;
}

export interface MaxmindOptions {
  /** Folder holding the .mmdb files; undefined means none configured (two warnings, all misses). */
  dir?: string;
  logger: Logger;
  /** Clock for the staleness check and fetchedAt; tests pin it. */
  now?: () => Date;
  /** Decoded values kept per database (default 100,000): sized so a run over ~100k distinct IPs rarely decodes twice. */
  cacheSize?: number;
}

export interface MaxmindSource {
  readonly name: typeof MAXMIND_SOURCE_NAME;
  readonly ttlSeconds: number;
  /** One result per input, in order: 'hit' when either database knows the IP, else 'miss'. */
  lookup(ips: readonly string[]): SourceResult<MaxmindValue>[];
  info(): MaxmindInfo;
  close(): void;
}

/** Pass 2 (Cymru) is needed when MaxMind gave no ASN. */
export function needsCymru(value: MaxmindValue | null | undefined): boolean {
  return value == null || value.asn == null;
}

const CANDIDATES: Record<MaxmindKind, { label: string; files: string[] }> = {
  // The paid GeoIP2 edition first: whoever has it bought it for its better data.
  city: { label: 'City', files: ['GeoIP2-City.mmdb', 'GeoLite2-City.mmdb'] },
  asn: { label: 'ASN', files: ['GeoIP2-ASN.mmdb', 'GeoLite2-ASN.mmdb'] },
};

/** The decoder cache mmdb-lib accepts: keyed by data offset, bounded, oldest out first. */
class BoundedCache {
  readonly #map = new Map<string | number, unknown>();
  constructor(readonly max: number) {}
  get(key: string | number): unknown {
    return this.#map.get(key);
  }
  set(key: string | number, value: unknown): void {
    if (this.#map.size >= this.max) this.#map.delete(this.#map.keys().next().value as string | number);
    this.#map.set(key, value);
  }
}

interface Loaded<T extends CityResponse | AsnResponse> {
  reader: Reader<T>;
  info: MaxmindDatabaseInfo;
}

const isoDate = (d: Date): string => d.toISOString().slice(0, 10);

function isGzip(buf: Buffer): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** Hint for a database that was downloaded but not unpacked where we look. */
async function unpackHint(dir: string, files: string[]): Promise<string> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return '';
  }
  for (const file of files) {
    const base = file.replace(/\.mmdb$/, '');
    const packed = names.find((n) => n === `${file}.gz` || (n.startsWith(base) && /\.(tar\.gz|tgz|gz|zip)$/.test(n)));
    if (packed) return `; found ${packed}: extract ${file} from it into ${dir}`;
    const sub = names.find((n) => new RegExp(`^${base}_\\d{8}$`).test(n));
    if (sub) return `; found folder ${sub}: move ${sub}/${file} up into ${dir}`;
  }
  return '';
}

/** The fields Pass 1 keeps from a City record. */
type CityPart = Omit<MaxmindValue, 'city_db_build' | 'asn_db_build'> & { known: boolean };

const NO_CITY: CityPart = {
  known: false,
  country_code: null,
  country_name: null,
  city: null,
  latitude: null,
  longitude: null,
  accuracy_radius: null,
  asn: null,
  as_org: null,
};

// The reader's cache hands back the same object for the same record, so the property walk
// over its (megamorphic) decoded maps is done once per record, not once per IP.
const cityParts = new WeakMap<CityResponse, CityPart>();

function cityPart(c: CityResponse): CityPart {
  let part = cityParts.get(c);
  if (part) return part;
  const loc = c.location;
  // GeoIP2 Enterprise-style City records carry the ASN in traits.
  const traits = c.traits;
  part = {
    known: false,
    country_code: c.country?.iso_code ?? null,
    country_name: c.country?.names?.en ?? null,
    city: c.city?.names?.en ?? null,
    latitude: loc?.latitude ?? null,
    longitude: loc?.longitude ?? null,
    accuracy_radius: loc?.accuracy_radius ?? null,
    asn: traits?.autonomous_system_number ?? null,
    as_org: traits?.autonomous_system_number != null ? traits.autonomous_system_organization ?? null : null,
  };
  part.known = part.country_code !== null || part.city !== null || part.latitude !== null;
  cityParts.set(c, part);
  return part;
}

/**
 * Databases already read in this process, by path, while the file stays the same (inode, size,
 * modification time): live mode opens the source for every cycle, up to twice a second, and must
 * not read a 70 MB City database each time. A replaced file (geoip update renames a new one in)
 * is read again. Bounded: the few files of a folder or two.
 */
const loadedFiles = new Map<string, { ino: number; size: number; mtimeMs: number; cacheSize: number; loaded: Loaded<CityResponse | AsnResponse> }>();
const LOADED_FILES_MAX = 4;

/** A loaded database's facts; one warning when it is older than MAXMIND_STALE_DAYS (every open says so). */
function describe(reader: Reader<CityResponse | AsnResponse>, kind: MaxmindKind, file: string, path: string, now: Date, dir: string, logger: { warn(m: string): void }): MaxmindDatabaseInfo {
  const buildEpoch = reader.metadata.buildEpoch;
  const stale = now.getTime() - buildEpoch.getTime() > MAXMIND_STALE_DAYS * DAY_SECONDS * 1000;
  const info: MaxmindDatabaseInfo = { kind, file, path, databaseType: reader.metadata.databaseType, buildEpoch, buildDate: isoDate(buildEpoch), stale };
  if (stale) {
    const days = Math.floor((now.getTime() - buildEpoch.getTime()) / (DAY_SECONDS * 1000));
    logger.warn(`MaxMind database ${path} was built ${info.buildDate} (${days} days ago, older than ${MAXMIND_STALE_DAYS} days): update it with \`cowrie-enrich geoip update --maxmind-dir ${dir}\``);
  }
  return info;
}

async function loadKind<T extends CityResponse | AsnResponse>(
  kind: MaxmindKind,
  opts: MaxmindOptions,
  now: Date,
  /** Problems with the files, reported by the caller once it knows whether anything loaded. */
  problem: (message: string) => void,
): Promise<Loaded<T> | null> {
  const { label, files } = CANDIDATES[kind];
  const { dir } = opts;
  const logger = { warn: problem, debug: (m: string) => opts.logger.debug(m) };
  const consequence = kind === 'asn' ? 'every IP will need Cymru for its ASN' : 'no geolocation this run';
  if (dir === undefined) {
    opts.logger.warn(`No MaxMind directory configured: ${label} database not loaded (${consequence}); IPs stay pending for MaxMind`);
    return null;
  }
  let problems = 0;
  const cacheSize = opts.cacheSize ?? 100_000;
  for (const file of files) {
    const path = join(dir, file);
    const st = await stat(path).catch(() => null);
    const known = st && loadedFiles.get(path);
    if (st && known && known.ino === st.ino && known.size === st.size && known.mtimeMs === st.mtimeMs && known.cacheSize === cacheSize) {
      const info = describe(known.loaded.reader as Reader<T>, kind, file, path, now, dir, logger);
      return { reader: known.loaded.reader as Reader<T>, info };
    }
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      problems++;
      logger.warn(`MaxMind database ${path} cannot be read (${errorMessage(err)}); ignoring it (${consequence})`);
      continue;
    }
    if (isGzip(buf)) {
      problems++;
      logger.warn(`MaxMind database ${path} is gzip-compressed: decompress it (e.g. gunzip) to a plain .mmdb; ignoring it (${consequence})`);
      continue;
    }
    let reader: Reader<T>;
    try {
      reader = new Reader<T>(buf, { cache: new BoundedCache(cacheSize) });
    } catch (err) {
      problems++;
      logger.warn(`MaxMind database ${path} is not a valid MaxMind DB file (${errorMessage(err)}); ignoring it (${consequence})`);
      continue;
    }
    const info = describe(reader, kind, file, path, now, dir, logger);
    logger.debug(`MaxMind ${label}: ${path} (${info.databaseType}, built ${info.buildDate})`);
    if (st) {
      loadedFiles.delete(path);
      loadedFiles.set(path, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, cacheSize, loaded: { reader, info } as Loaded<CityResponse | AsnResponse> });
      for (const oldest of loadedFiles.keys()) if (loadedFiles.size > LOADED_FILES_MAX) loadedFiles.delete(oldest);
    }
    return { reader, info };
  }
  if (problems === 0) {
    logger.warn(`MaxMind ${label} database not found in ${dir} (looked for ${files.join(', ')})${await unpackHint(dir, files)}: ${consequence}`);
  }
  return null;
}

/**
 * Open the City and ASN databases found in `opts.dir`. Throws a UsageError when a directory is
 * given but missing or without any usable database; one missing or bad file is a warning.
 */
export async function openMaxmind(opts: MaxmindOptions): Promise<MaxmindSource> {
  const clock = opts.now ?? ((): Date => new Date());
  const now = clock();
  if (opts.dir !== undefined) {
    const isDir = await stat(opts.dir).then((st) => st.isDirectory(), () => false);
    if (!isDir) throw new UsageError(`MaxMind directory ${opts.dir} does not exist or is not a folder (--maxmind-dir / COWRIE_MAXMIND_DIR)`);
  }
  const problems: string[] = [];
  let city = await loadKind<CityResponse>('city', opts, now, (m) => problems.push(m));
  let asn = await loadKind<AsnResponse>('asn', opts, now, (m) => problems.push(m));
  if (opts.dir !== undefined && !city && !asn) {
    throw new UsageError(`MaxMind directory ${opts.dir} holds no usable database: ${problems.join('; ')}`);
  }
  for (const m of problems) opts.logger.warn(m);
  const cityBuild = city?.info.buildDate ?? null;
  const asnBuild = asn?.info.buildDate ?? null;
  const versionParts = [city, asn].filter((d) => d !== null).map((d) => `${d.info.databaseType} ${d.info.buildDate}`);
  const version = versionParts.length ? versionParts.join(', ') : undefined;
  let closed = false;

  function one(ip: string, fetchedAt: string): SourceResult<MaxmindValue> {
    if (!validate(ip)) {
      return { key: ip, status: 'miss', value: null, fetchedAt, version, ttlSeconds: MAXMIND_TTL_SECONDS, reason: 'not an IP address' };
    }
    const v6 = ip.includes(':');
    // An IPv4-only database cannot answer for IPv6 addresses.
    const c = city && !(v6 && city.reader.metadata.ipVersion === 4) ? city.reader.get(ip) : null;
    const a = asn && !(v6 && asn.reader.metadata.ipVersion === 4) ? asn.reader.get(ip) : null;
    const geo = c ? cityPart(c) : NO_CITY;
    let asNumber = a ? a.autonomous_system_number ?? null : null;
    let asOrg = a ? a.autonomous_system_organization ?? null : null;
    if (asNumber === null) [asNumber, asOrg] = [geo.asn, geo.as_org];
    if (!geo.known && asNumber === null) {
      return { key: ip, status: 'miss', value: null, fetchedAt, version, ttlSeconds: MAXMIND_TTL_SECONDS };
    }
    const value: MaxmindValue = {
      country_code: geo.country_code,
      country_name: geo.country_name,
      city: geo.city,
      latitude: geo.latitude,
      longitude: geo.longitude,
      accuracy_radius: geo.accuracy_radius,
      asn: asNumber,
      as_org: asOrg,
      city_db_build: cityBuild,
      asn_db_build: asnBuild,
    };
    return { key: ip, status: 'hit', value, fetchedAt, version, ttlSeconds: MAXMIND_TTL_SECONDS };
  }

  return {
    name: MAXMIND_SOURCE_NAME,
    ttlSeconds: MAXMIND_TTL_SECONDS,
    lookup(ips) {
      if (closed) throw new Error('MaxMind source used after close()');
      const fetchedAt = clock().toISOString();
      return ips.map((ip) => one(ip, fetchedAt));
    },
    info() {
      return { dir: opts.dir ?? null, city: city?.info ?? null, asn: asn?.info ?? null };
    },
    close() {
      closed = true;
      // Drop the readers so their in-memory copies of the files can be collected.
      city = null;
      asn = null;
    },
  };
}

/** Pass 1 of the IP refresh: offline, every public address; its ASN and country win over Cymru's. */
export const maxmindSource = defineSource({
  name: MAXMIND_SOURCE_NAME,
  title: 'MaxMind',
  keys: 'ip',
  network: false,
  defaultOn: true,
  settings: {
    maxmindDir: { flag: 'maxmindDir', env: 'COWRIE_MAXMIND_DIR', file: 'maxmind.dir', ...optStr, help: 'folder with GeoLite2-City.mmdb / GeoLite2-ASN.mmdb', arg: '<dir>' },
    // Used by `cowrie-enrich geoip update` (its own flags), not by the refresh.
    maxmindUrl: { flag: 'maxmindUrl', env: 'COWRIE_MAXMIND_URL', file: 'maxmind.url', def: 'https://download.maxmind.com', ...apiUrl },
    maxmindAccountId: { env: 'MAXMIND_ACCOUNT_ID', file: 'maxmind.account_id', schema: z.union([z.string().regex(/^\d{1,12}$/), z.number().int().positive().transform(String)]).optional(), expect: 'a MaxMind account ID (a number)', secret: true },
    maxmindLicenseKey: { env: 'MAXMIND_LICENSE_KEY', file: 'maxmind.license_key', schema: z.string().min(1).max(256).optional(), expect: 'a MaxMind licence key', secret: true },
  },
  // Without a folder the reader warns twice and IPs stay pending for MaxMind.
  requires: { setting: 'maxmindDir', shown: '--maxmind-dir', whenMissing: 'pending', until: 'a MaxMind folder' },
  ttl: { hitSeconds: MAXMIND_TTL_SECONDS, missSeconds: MAXMIND_TTL_SECONDS },
  limits: () => ({
    rate: { perWindow: Number.MAX_SAFE_INTEGER, windowMs: 1000 }, concurrency: 1, batchSize: Number.MAX_SAFE_INTEGER, dailyQuota: null,
    retries: 0, throttleRetries: 0, backoffMs: 0, maxRetryAfterMs: 0, timeoutMs: 0, maxFailuresInRow: Number.MAX_SAFE_INTEGER,
  }),
  columns: {
    asn: { precedence: 1, from: (doc) => (doc.maxmind as Partial<MaxmindValue> | undefined)?.asn ?? null },
    country: { precedence: 1, from: (doc) => (doc.maxmind as Partial<MaxmindValue> | undefined)?.country_code ?? null },
  },
  open: async (o, ctx): Promise<LocalHandle<MaxmindValue>> => {
    const mm = await openMaxmind({ dir: o.maxmindDir, logger: ctx.logger, now: ctx.now });
    return { kind: 'local', lookup: (ips) => mm.lookup(ips), close: () => mm.close() };
  },
});
