/**
 * A deterministic fake Internet shared by the simulators and the log generator:
 * for a seed, every IPv4 /16 (and IPv6 /32) belongs to one fake AS with a country,
 * registry and allocation date. The Cymru simulator answers from it, the mmdb writer
 * writes part of it into GeoLite2-style databases, and the log generator draws IPs from it,
 * so a demo run shows consistent results end to end.
 */
export interface WorldAs {
  asn: number;
  name: string;
  country: string;
  registry: string;
  allocated: string;
}

export interface WorldNetwork {
  /** null when the prefix is allocated but not announced (Cymru prints NA). */
  as: WorldAs | null;
  prefix: string;
  country: string;
  registry: string;
  allocated: string;
  city: string;
  latitude: number;
  longitude: number;
}

const COUNTRIES: Array<[string, string, string, number, number]> = [
  // code, registry, a city, lat, lon
  ['US', 'arin', 'Ashburn', 39.04, -77.49],
  ['CN', 'apnic', 'Shanghai', 31.23, 121.47],
  ['RU', 'ripencc', 'Moscow', 55.75, 37.62],
  ['DE', 'ripencc', 'Frankfurt am Main', 50.11, 8.68],
  ['NL', 'ripencc', 'Amsterdam', 52.37, 4.9],
  ['BR', 'lacnic', 'Sao Paulo', -23.55, -46.63],
  ['IN', 'apnic', 'Mumbai', 19.08, 72.88],
  ['VN', 'apnic', 'Hanoi', 21.03, 105.85],
  ['KR', 'apnic', 'Seoul', 37.57, 126.98],
  ['GB', 'ripencc', 'London', 51.51, -0.13],
  ['FR', 'ripencc', 'Paris', 48.86, 2.35],
  ['SG', 'apnic', 'Singapore', 1.29, 103.85],
  ['ZA', 'afrinic', 'Johannesburg', -26.2, 28.05],
  ['IR', 'ripencc', 'Tehran', 35.69, 51.39],
  ['AR', 'lacnic', 'Buenos Aires', -34.6, -58.38],
];

const WORDS = ['NET', 'TELECOM', 'HOSTING', 'CLOUD', 'DATA', 'LINK', 'BROADBAND', 'CDN', 'SERVERS', 'FIBER'];

/** 32-bit FNV-1a, mixed with the seed: small, fast, deterministic. */
export function hash32(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d) >>> 0;
  h ^= h >>> 12;
  return h >>> 0;
}

/** The fake AS with index i (0..asCount-1) for a seed. */
export function worldAs(i: number, seed: number): WorldAs {
  const h = hash32(`as${i}`, seed);
  const [country, registry] = COUNTRIES[h % COUNTRIES.length];
  const asn = 1000 + ((h >>> 8) % 200_000);
  const word = WORDS[(h >>> 4) % WORDS.length];
  const year = 1995 + ((h >>> 12) % 28);
  const month = 1 + ((h >>> 16) % 12);
  const day = 1 + ((h >>> 20) % 28);
  // Names carry the ", CC" suffix and sometimes a comma inside, as real ones do.
  const name = (h & 7) === 0 ? `AS${asn}-${word} - ${word} Holdings, Inc., ${country}` : `AS${asn}-${word}, ${country}`;
  return {
    asn,
    name,
    country,
    registry,
    allocated: `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`,
  };
}

export const WORLD_AS_COUNT = 400;

/** Key of the network an address belongs to: the IPv4 /16 or the IPv6 /32. */
export function networkKey(ip: string): { key: string; prefix: string } {
  if (ip.includes(':')) {
    const groups = expandIpv6(ip);
    const key = `${groups[0]}:${groups[1]}`;
    return { key, prefix: `${parseInt(groups[0], 16).toString(16)}:${parseInt(groups[1], 16).toString(16)}::/32` };
  }
  const [a, b] = ip.split('.');
  return { key: `${a}.${b}`, prefix: `${a}.${b}.0.0/16` };
}

export function isPrivateIpv4(ip: string): boolean {
  const [a, b] = ip.split('.').map(Number);
  return a === 10 || a === 127 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || a >= 224;
}

/** The network of an IP in the world of `seed`. About 4% of networks are allocated but unannounced. */
export function worldNetwork(ip: string, seed: number): WorldNetwork {
  const { key, prefix } = networkKey(ip);
  const h = hash32(key, seed);
  const as = worldAs(h % WORLD_AS_COUNT, seed);
  const announced = (h >>> 9) % 100 >= 4;
  const [country, registry, city, lat, lon] = COUNTRIES.find((c) => c[0] === as.country) ?? COUNTRIES[0];
  const year = 1995 + ((h >>> 13) % 28);
  return {
    as: announced ? as : null,
    prefix: announced ? prefix : 'NA',
    country,
    registry,
    allocated: (h >>> 3) % 10 === 0 ? '' : `${year}-0${1 + ((h >>> 17) % 9)}-1${(h >>> 21) % 10}`,
    city,
    latitude: lat + (((h >>> 5) % 100) - 50) / 100,
    longitude: lon + (((h >>> 11) % 100) - 50) / 100,
  };
}

/** Whether MaxMind (in the simulated world) knows the ASN of this network: ~85% of networks. */
export function worldMaxmindHasAsn(ip: string, seed: number): boolean {
  const { key } = networkKey(ip);
  return hash32(`mm:${key}`, seed) % 100 < 85;
}

export function expandIpv6(ip: string): string[] {
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail !== undefined ? new Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].map((g) => g.padStart(4, '0'));
}
