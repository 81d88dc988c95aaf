/**
 * What `geoip update` and `geoip status` work on — folder, editions, credentials, server — from
 * our own settings first (flags, env, config file), then a geoipupdate GeoIP.conf.
 */
import { UsageError } from '../../errors.js';
import { escapeControl } from '../../text.js';
import type { MaxmindCredentials } from './download.js';
import type { GeoipConf } from './geoip-conf.js';

export const DEFAULT_EDITIONS = ['GeoLite2-City', 'GeoLite2-ASN'];
const EDITION = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
const MAX_EDITIONS = 16;

export interface UpdateSettingsInput {
  /** Our resolved settings (flag > env > config file). */
  maxmindDir?: string;
  maxmindUrl: string;
  maxmindAccountId?: string;
  maxmindLicenseKey?: string;
  /** --editions as typed, comma- or space-separated. */
  editions?: string;
  conf: GeoipConf | null;
}

export interface Target {
  dir: string;
  editions: string[];
}

/** Edition IDs become file names, so only MaxMind's own alphabet is accepted. */
export function parseEditions(text: string, from: string): string[] {
  const list = [...new Set(text.split(/[\s,]+/).filter(Boolean))];
  if (list.length === 0) throw new UsageError(`${from} names no edition`);
  if (list.length > MAX_EDITIONS) throw new UsageError(`${from} names ${list.length} editions; at most ${MAX_EDITIONS}`);
  const bad = list.find((e) => !EDITION.test(e));
  if (bad !== undefined) throw new UsageError(`${from}: ${JSON.stringify(escapeControl(bad.slice(0, 80)))} is not an edition ID like GeoLite2-City`);
  return list;
}

export function resolveTarget(input: UpdateSettingsInput): Target {
  const dir = input.maxmindDir ?? input.conf?.databaseDirectory;
  if (!dir) {
    throw new UsageError('no MaxMind folder: give --maxmind-dir DIR (or COWRIE_MAXMIND_DIR, maxmind.dir in the config, or DatabaseDirectory in GeoIP.conf)');
  }
  const editions = input.editions !== undefined
    ? parseEditions(input.editions, '--editions')
    : input.conf?.editionIds ? parseEditions(input.conf.editionIds.join(' '), `EditionIDs in ${input.conf.path}`) : DEFAULT_EDITIONS;
  return { dir, editions };
}

/** Credentials from env/config as a pair, else from GeoIP.conf; never half from each. */
export function resolveCredentials(input: UpdateSettingsInput): MaxmindCredentials {
  const { maxmindAccountId: id, maxmindLicenseKey: key, conf } = input;
  if (id !== undefined && key !== undefined) return { accountId: id, licenseKey: key };
  if (id !== undefined || key !== undefined) {
    const missing = id === undefined ? 'MAXMIND_ACCOUNT_ID (or maxmind.account_id)' : 'MAXMIND_LICENSE_KEY (or maxmind.license_key)';
    throw new UsageError(`MaxMind credentials are incomplete: ${missing} is not set`);
  }
  if (conf?.accountId !== undefined && conf.licenseKey !== undefined) {
    if (!/^\d{1,12}$/.test(conf.accountId)) throw new UsageError(`AccountID in ${conf.path} is not a number`);
    if (conf.licenseKey.length > 256) throw new UsageError(`LicenseKey in ${conf.path} is too long`);
    return { accountId: conf.accountId, licenseKey: conf.licenseKey };
  }
  const where = conf?.unreadable ? ` (${conf.path} cannot be read: ${conf.unreadable})` : conf ? ` (${conf.path} has no AccountID and LicenseKey)` : '';
  throw new UsageError(`no MaxMind credentials: set MAXMIND_ACCOUNT_ID and MAXMIND_LICENSE_KEY, or maxmind.account_id and maxmind.license_key in the config, or point --geoip-conf at a GeoIP.conf${where}`);
}

/** Basic auth over plain HTTP would hand the license key to anyone on the path; loopback is fine. */
export function checkServerUrl(url: string): void {
  const u = new URL(url);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) {
    throw new UsageError(`--maxmind-url must be https:// (plain http only on 127.0.0.1/localhost), got ${u.protocol}//${u.host}`);
  }
}
