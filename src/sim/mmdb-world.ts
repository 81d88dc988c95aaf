/**
 * Simulated GeoLite2 City and ASN databases for the fake Internet of src/sim/world.ts, so demos,
 * tests and benchmarks run Pass 1 against files shaped like MaxMind's without a licence key.
 * City covers every public IPv4 /16 (plus coarse IPv6); ASN covers the /16s MaxMind "knows"
 * (worldMaxmindHasAsn, ~85%), which leaves the rest to Cymru as in the user guide.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hash32, isPrivateIpv4, networkKey, worldMaxmindHasAsn, worldNetwork } from './world.js';
import { mmdbDouble, MmdbWriter, type MmdbMap } from './mmdb-writer.js';

export interface WorldDatabaseOptions {
  dir: string;
  seed: number;
  /** IPv4 first octets to cover (default 0..255); fewer makes small, fast test databases. */
  coverage?: readonly number[];
  /** Default: now. Set it in the past to get a database "older than 30 days". */
  buildEpoch?: Date;
}

export interface WrittenDatabase {
  path: string;
  databaseType: string;
  networks: number;
  bytes: number;
  buildEpoch: Date;
}

interface CountryInfo {
  name: string;
  continent: 'AF' | 'AS' | 'EU' | 'NA' | 'SA';
  timeZone: string;
}

// The countries world.ts uses; an unknown code still gets a record (named by its code).
const COUNTRY_INFO: Record<string, CountryInfo> = {
  US: { name: 'United States', continent: 'NA', timeZone: 'America/New_York' },
  CN: { name: 'China', continent: 'AS', timeZone: 'Asia/Shanghai' },
  RU: { name: 'Russia', continent: 'EU', timeZone: 'Europe/Moscow' },
  DE: { name: 'Germany', continent: 'EU', timeZone: 'Europe/Berlin' },
  NL: { name: 'The Netherlands', continent: 'EU', timeZone: 'Europe/Amsterdam' },
  BR: { name: 'Brazil', continent: 'SA', timeZone: 'America/Sao_Paulo' },
  IN: { name: 'India', continent: 'AS', timeZone: 'Asia/Kolkata' },
  VN: { name: 'Vietnam', continent: 'AS', timeZone: 'Asia/Ho_Chi_Minh' },
  KR: { name: 'South Korea', continent: 'AS', timeZone: 'Asia/Seoul' },
  GB: { name: 'United Kingdom', continent: 'EU', timeZone: 'Europe/London' },
  FR: { name: 'France', continent: 'EU', timeZone: 'Europe/Paris' },
  SG: { name: 'Singapore', continent: 'AS', timeZone: 'Asia/Singapore' },
  ZA: { name: 'South Africa', continent: 'AF', timeZone: 'Africa/Johannesburg' },
  IR: { name: 'Iran', continent: 'AS', timeZone: 'Asia/Tehran' },
  AR: { name: 'Argentina', continent: 'SA', timeZone: 'America/Argentina/Buenos_Aires' },
};

const CONTINENT_NAMES = { AF: 'Africa', AS: 'Asia', EU: 'Europe', NA: 'North America', SA: 'South America' };
const ACCURACY = [5, 10, 20, 50, 100, 200, 500, 1000];

// Shared sub-records: the writer recognises an object it has written before without re-keying it.
const countryCache = new Map<string, MmdbMap>();
const cityCache = new Map<string, MmdbMap>();

function countryRecords(code: string): MmdbMap {
  let cached = countryCache.get(code);
  if (!cached) {
    const info = COUNTRY_INFO[code];
    const country = { iso_code: code, names: { en: info?.name ?? code } };
    const continent = info ? { code: info.continent, names: { en: CONTINENT_NAMES[info.continent] } } : undefined;
    cached = { continent, country, registered_country: country };
    countryCache.set(code, cached);
  }
  return cached;
}

function cityRecord(name: string): MmdbMap {
  let cached = cityCache.get(name);
  if (!cached) cityCache.set(name, (cached = { names: { en: name } }));
  return cached;
}

/** The City record of one IPv4 /16, shaped like a GeoLite2-City record (read-only: parts are shared). */
export function worldCityRecord(ip: string, seed: number): MmdbMap {
  const net = worldNetwork(ip, seed);
  const h = hash32(`geo:${networkKey(ip).key}`, seed);
  const round = (x: number): number => Math.round(x * 10_000) / 10_000;
  return {
    ...countryRecords(net.country),
    city: cityRecord(net.city),
    location: {
      accuracy_radius: ACCURACY[h % ACCURACY.length],
      // Forced doubles: a whole-degree coordinate must not turn into an integer.
      latitude: mmdbDouble(round(net.latitude)),
      longitude: mmdbDouble(round(net.longitude)),
      time_zone: COUNTRY_INFO[net.country]?.timeZone,
    },
  };
}

/** The ASN record of one IPv4 /16, or null where simulated MaxMind has no ASN (Cymru's job). */
export function worldAsnRecord(ip: string, seed: number): MmdbMap | null {
  if (!worldMaxmindHasAsn(ip, seed)) return null;
  const as = worldNetwork(ip, seed).as;
  if (!as) return null;
  // Cymru's AS name ends in ", CC"; MaxMind's organisation does not.
  return { autonomous_system_number: as.asn, autonomous_system_organization: as.name.replace(/, [A-Z]{2}$/, '') };
}

// Coarse IPv6: a default for the global unicast space and one block per registry.
const IPV6_BLOCKS: Array<[string, string]> = [
  ['2000::/3', 'US'],
  ['2400::/12', 'CN'],
  ['2600::/12', 'US'],
  ['2800::/12', 'BR'],
  ['2a00::/12', 'DE'],
  ['2c00::/12', 'ZA'],
];
const CENTROIDS: Record<string, [number, number]> = { US: [37.751, -97.822], CN: [34.7732, 113.722], BR: [-22.8305, -43.2192], DE: [51.2993, 9.491], ZA: [-29, 24] };

function ipv6Record(code: string): MmdbMap {
  const [lat, lon] = CENTROIDS[code];
  return { ...countryRecords(code), location: { accuracy_radius: 1000, latitude: mmdbDouble(lat), longitude: mmdbDouble(lon) } };
}

/** Write GeoLite2-City.mmdb and GeoLite2-ASN.mmdb for the world of `seed` into `dir`. */
export async function writeWorldDatabases(opts: WorldDatabaseOptions): Promise<WrittenDatabase[]> {
  const buildEpoch = opts.buildEpoch ?? new Date();
  const octets = opts.coverage ?? Array.from({ length: 256 }, (_, i) => i);
  const description = (kind: string): Record<string, string> => ({ en: `Simulated GeoLite2 ${kind} database (cowrie-sim world, seed ${opts.seed})` });
  const city = new MmdbWriter({ databaseType: 'GeoLite2-City', description: description('City'), languages: ['en'], buildEpoch });
  const asn = new MmdbWriter({ databaseType: 'GeoLite2-ASN', description: description('ASN'), languages: ['en'], buildEpoch });

  for (const [network, code] of IPV6_BLOCKS) city.insert(network, ipv6Record(code));
  for (const a of octets) {
    for (let b = 0; b < 256; b++) {
      const ip = `${a}.${b}.0.1`;
      if (isPrivateIpv4(ip)) continue;
      const network = `${a}.${b}.0.0/16`;
      city.insert(network, worldCityRecord(ip, opts.seed));
      const record = worldAsnRecord(ip, opts.seed);
      if (record) asn.insert(network, record);
    }
  }

  await mkdir(opts.dir, { recursive: true });
  const written: WrittenDatabase[] = [];
  for (const [writer, type] of [[city, 'GeoLite2-City'], [asn, 'GeoLite2-ASN']] as const) {
    const path = join(opts.dir, `${type}.mmdb`);
    await writer.write(path);
    written.push({ path, databaseType: type, networks: writer.networkCount, bytes: (await stat(path)).size, buildEpoch });
  }
  return written;
}
