/**
 * Where an address can be routed. Only `public` addresses are ever asked of a network source or
 * exported: a Docker sensor logs its bridge (172.17.0.1) for every attacker, and private,
 * loopback, link-local, CGNAT, documentation and other reserved ranges say nothing about who
 * attacked. Ranges come from ipaddr.js (IANA special-purpose registries, RFC 6890).
 */
import ipaddr from 'ipaddr.js';
import { UsageError } from '../errors.js';
import { normaliseIp } from '../ingest/parse.js';
import { escapeControl } from '../text.js';

export type IpScope =
  | 'public'
  | 'private'
  | 'loopback'
  | 'link_local'
  | 'cgnat'
  | 'multicast'
  | 'unspecified'
  | 'reserved';

const RANGE_SCOPE: Record<string, IpScope> = {
  unicast: 'public',
  private: 'private',
  uniqueLocal: 'private',
  loopback: 'loopback',
  linkLocal: 'link_local',
  carrierGradeNat: 'cgnat',
  multicast: 'multicast',
  broadcast: 'reserved',
  unspecified: 'unspecified',
};

/** The scope of a normalised address; anything unparsable or unnamed counts as reserved. */
export function ipScope(ip: string): IpScope {
  if (!ipaddr.isValid(ip)) return 'reserved';
  let addr = ipaddr.parse(ip);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    addr = (addr as ipaddr.IPv6).toIPv4Address();
  }
  return RANGE_SCOPE[addr.range()] ?? 'reserved';
}

export function isPublicIp(ip: string): boolean {
  return ipScope(ip) === 'public';
}

/**
 * An address given on the command line, in the form ip_inventory stores (IPv4-mapped IPv6 as
 * IPv4, IPv6 canonical); anything else is a usage error (exit 2), never a silent miss.
 */
export function ipArgument(raw: string): string {
  const ip = normaliseIp(raw);
  if (ip === null) throw new UsageError(`not an IP address: "${escapeControl(raw.slice(0, 100))}"`);
  return ip;
}
