/**
 * Threat-intel exports: a STIX 2.1 bundle (an identity for the producer, one indicator per IP or
 * file hash) and a MISP event (one attribute each). Field choices follow the STIX 2.1 spec §4.6
 * and §9, and MISP's event JSON; OpenCTI refuses indicators without `name`, so every one has it.
 */
import { randomUUID } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { FileRow } from './data.js';
import type { BlockEntry } from './blocklist.js';

const PRODUCER = 'cowrie-report';

/** RFC 3339 UTC with milliseconds, as STIX writes timestamps. */
const stixTime = (iso: string | number | Date) => new Date(typeof iso === 'string' ? Date.parse(iso) : iso).toISOString();

/** A STIX pattern string literal: backslash and single quote escaped. */
const stixString = (v: string) => `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;

interface FeedItem {
  pattern: string;
  name: string;
  description: string;
  validFrom: string;
  validUntil: string;
  indicatorTypes: string[];
  labels: string[];
}

function bundle(items: FeedItem[], now: Date): string {
  const created = stixTime(now);
  const identity = {
    type: 'identity', spec_version: '2.1', id: `identity--${randomUUID()}`, created, modified: created,
    name: PRODUCER, identity_class: 'system', description: 'Cowrie honeypot sensors (cowrie-enrich)',
  };
  const objects: unknown[] = [identity];
  for (const it of items) {
    objects.push({
      type: 'indicator', spec_version: '2.1', id: `indicator--${randomUUID()}`, created, modified: created, created_by_ref: identity.id,
      name: it.name, description: it.description, indicator_types: it.indicatorTypes, pattern: it.pattern, pattern_type: 'stix',
      valid_from: it.validFrom, valid_until: it.validUntil, labels: it.labels,
    });
  }
  return `${JSON.stringify({ type: 'bundle', id: `bundle--${randomUUID()}`, objects }, null, 2)}\n`;
}

/** valid_until must be later than valid_from: the last sighting plus how long the feed vouches for it. */
function validity(first: string, last: string, maxAgeMs: number): { validFrom: string; validUntil: string } {
  const from = Date.parse(first);
  const until = Math.max(Date.parse(last) + maxAgeMs, from + 1000);
  return { validFrom: stixTime(from), validUntil: stixTime(until) };
}

export function ipStix(entries: BlockEntry[], maxAgeMs: number, now: Date): string {
  return bundle(entries.map((e) => ({
    pattern: `[${isIPv4(e.ip) ? 'ipv4-addr' : 'ipv6-addr'}:value = ${stixString(e.ip)}]`,
    name: `Honeypot attacker ${e.ip}`,
    description: `${e.sessions} session(s) on ${e.sensors} sensor(s), ${e.firstSeen} to ${e.lastSeen}`,
    ...validity(e.firstSeen, e.lastSeen, maxAgeMs),
    indicatorTypes: [e.noise ? 'anomalous-activity' : 'malicious-activity'],
    labels: [`greynoise:${e.classification}`, ...(e.noise ? ['scanner'] : [])],
  })), now);
}

export function fileStix(files: FileRow[], maxAgeMs: number, now: Date): string {
  return bundle(files.map((f) => {
    const seen = f.firstSeen ?? stixTime(now);
    return {
      pattern: `[file:hashes.'SHA-256' = ${stixString(f.sha256)}]`,
      name: `Honeypot download ${f.sha256}`,
      description: `${f.sessions} session(s); VirusTotal ${f.malicious === null ? 'has no verdict' : `${f.malicious}/${f.total} malicious`}`,
      ...validity(seen, seen, maxAgeMs),
      indicatorTypes: ['malicious-activity'],
      labels: [f.status === 'unknown' ? 'virustotal:unknown' : 'virustotal:malicious'],
    };
  }), now);
}

interface MispAttribute { type: string; category: string; value: string; comment: string; first_seen: string | null; last_seen: string | null }

function mispEvent(info: string, attrs: MispAttribute[], now: Date): string {
  const event = {
    Event: {
      info, date: now.toISOString().slice(0, 10), threat_level_id: '3', analysis: '2', distribution: '0', uuid: randomUUID(),
      Tag: [{ name: 'tlp:white' }],
      // An unknown time is left out rather than sent as null.
      Attribute: attrs.map((a) => Object.fromEntries(Object.entries({ ...a, to_ids: true, uuid: randomUUID() }).filter(([, v]) => v !== null))),
    },
  };
  return `${JSON.stringify(event, null, 2)}\n`;
}

export function ipMisp(entries: BlockEntry[], window: string, now: Date): string {
  return mispEvent(`Cowrie honeypot attackers ${window}`, entries.map((e) => ({
    type: 'ip-src', category: 'Network activity', value: e.ip, first_seen: stixTime(e.firstSeen), last_seen: stixTime(e.lastSeen),
    comment: `${e.sessions} session(s) on ${e.sensors} sensor(s); GreyNoise ${e.classification}`,
  })), now);
}

export function fileMisp(files: FileRow[], window: string, now: Date): string {
  return mispEvent(`Cowrie honeypot downloads ${window}`, files.map((f) => ({
    type: 'sha256', category: 'Payload delivery', value: f.sha256, first_seen: f.firstSeen ? stixTime(f.firstSeen) : null, last_seen: null,
    comment: `${f.sessions} session(s); VirusTotal ${f.malicious === null ? 'has no verdict' : `${f.malicious}/${f.total} malicious`}`,
  })), now);
}
