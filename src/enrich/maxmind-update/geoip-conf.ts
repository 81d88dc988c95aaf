/**
 * geoipupdate's GeoIP.conf (`Key value` lines, `#` comments), so users who already run
 * geoipupdate change nothing: AccountID, LicenseKey, EditionIDs and DatabaseDirectory.
 * The names geoipupdate before 2.5 used (UserId, ProductIds) are read too.
 */
import { readFile, stat } from 'node:fs/promises';
import { UsageError } from '../../errors.js';
import { escapeControl } from '../../text.js';

export interface GeoipConf {
  path: string;
  accountId?: string;
  licenseKey?: string;
  editionIds?: string[];
  databaseDirectory?: string;
  /** Set when the default file exists but cannot be read (e.g. root-only): not fatal unless it was needed. */
  unreadable?: string;
}

/** geoipupdate's own default; read only when it exists. */
export const DEFAULT_GEOIP_CONF = '/etc/GeoIP.conf';
/** A GeoIP.conf is a few hundred bytes; anything this big is not one. */
const MAX_CONF_BYTES = 64 * 1024;

const KEYS: Record<string, keyof Omit<GeoipConf, 'path' | 'unreadable'>> = {
  accountid: 'accountId',
  userid: 'accountId',
  licensekey: 'licenseKey',
  editionids: 'editionIds',
  productids: 'editionIds',
  databasedirectory: 'databaseDirectory',
};

/** Placeholders shipped in distribution packages' GeoIP.conf mean "not configured". */
function isPlaceholder(key: keyof GeoipConf, value: string): boolean {
  if (key === 'accountId') return /^0+$/.test(value) || /YOUR_/i.test(value);
  if (key === 'licenseKey') return /^0+$/.test(value) || /YOUR_/i.test(value);
  return false;
}

export function parseGeoipConf(text: string, path: string): GeoipConf {
  const conf: GeoipConf = { path };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    const key = m ? KEYS[m[1].toLowerCase()] : undefined;
    if (!m || !key) continue; // geoipupdate's other keys (Host, Proxy, LockFile, …) are not ours
    const value = m[2].trim();
    if (isPlaceholder(key, value)) continue;
    if (key === 'editionIds') conf.editionIds = value.split(/\s+/);
    else conf[key] = value;
  }
  return conf;
}

/**
 * Read the GeoIP.conf at `path`. An explicitly named file must be readable (exit 2 otherwise);
 * the default one is skipped when it does not exist, and only noted when it cannot be read.
 */
export async function readGeoipConf(path: string, explicit: boolean): Promise<GeoipConf | null> {
  try {
    const st = await stat(path);
    if (st.size > MAX_CONF_BYTES) throw new UsageError(`${escapeControl(path)} is ${st.size} bytes: too big for a GeoIP.conf`);
    return parseGeoipConf(await readFile(path, 'utf8'), path);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT' && !explicit) return null;
    if (!explicit) return { path, unreadable: code };
    throw new UsageError(`cannot read the GeoIP.conf ${escapeControl(path)}: ${code}`);
  }
}
