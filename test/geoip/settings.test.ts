import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { parseGeoipConf, readGeoipConf } from '../../src/enrich/maxmind-update/geoip-conf.js';
import { checkServerUrl, DEFAULT_EDITIONS, parseEditions, resolveCredentials, resolveTarget } from '../../src/enrich/maxmind-update/settings.js';
import { UsageError } from '../../src/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'geoip-settings-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const base = { maxmindUrl: 'https://download.maxmind.com', conf: null };

describe('GeoIP.conf', () => {
  it('reads the four keys geoipupdate and we share, their pre-2.5 names, and skips comments and other keys', () => {
    const conf = parseGeoipConf(['# comment', 'AccountID 123456  # trailing', 'LicenseKey abcDEF', 'EditionIDs GeoLite2-Country GeoLite2-City', 'DatabaseDirectory /var/lib/GeoIP', 'Host updates.maxmind.com', ''].join('\n'), 'G');
    expect(conf).toEqual({ path: 'G', accountId: '123456', licenseKey: 'abcDEF', editionIds: ['GeoLite2-Country', 'GeoLite2-City'], databaseDirectory: '/var/lib/GeoIP' });
    expect(parseGeoipConf('UserId 7\r\nLicenseKey k\r\nProductIds GeoLite2-ASN\r\n', 'old')).toMatchObject({ accountId: '7', licenseKey: 'k', editionIds: ['GeoLite2-ASN'] });
  });

  it('treats the placeholders distribution packages ship as not configured', () => {
    expect(parseGeoipConf('AccountID 0\nLicenseKey 000000000000\n', 'deb')).toEqual({ path: 'deb' });
    expect(parseGeoipConf('AccountID YOUR_ACCOUNT_ID_HERE\nLicenseKey YOUR_LICENSE_KEY_HERE\n', 'mm')).toEqual({ path: 'mm' });
  });

  it('needs an explicitly named file; skips a missing default one', async () => {
    await expect(readGeoipConf(join(dir, 'missing.conf'), true)).rejects.toThrow(UsageError);
    await expect(readGeoipConf(join(dir, 'missing.conf'), false)).resolves.toBeNull();
    const big = join(dir, 'big.conf');
    await writeFile(big, 'x'.repeat(70_000));
    await expect(readGeoipConf(big, true)).rejects.toThrow(/too big for a GeoIP.conf/);
  });
});

describe('update settings', () => {
  const conf = { path: '/etc/GeoIP.conf', accountId: '99', licenseKey: 'conf-key', editionIds: ['GeoLite2-Country'], databaseDirectory: '/usr/share/GeoIP' };

  it('our settings win over GeoIP.conf; GeoIP.conf fills what they leave out', () => {
    expect(resolveTarget({ ...base, conf })).toEqual({ dir: '/usr/share/GeoIP', editions: ['GeoLite2-Country'] });
    expect(resolveTarget({ ...base, conf, maxmindDir: '/srv/mm', editions: 'GeoLite2-ASN, GeoLite2-ASN' })).toEqual({ dir: '/srv/mm', editions: ['GeoLite2-ASN'] });
    expect(resolveTarget({ ...base, maxmindDir: '/srv/mm' }).editions).toEqual(DEFAULT_EDITIONS);
    expect(() => resolveTarget(base)).toThrow(/no MaxMind folder/);
    expect(resolveCredentials({ ...base, conf })).toEqual({ accountId: '99', licenseKey: 'conf-key' });
    expect(resolveCredentials({ ...base, conf, maxmindAccountId: '1', maxmindLicenseKey: 'env-key' })).toEqual({ accountId: '1', licenseKey: 'env-key' });
  });

  it('never mixes halves, and says which half is missing', () => {
    expect(() => resolveCredentials({ ...base, conf, maxmindLicenseKey: 'env-key' })).toThrow(/MAXMIND_ACCOUNT_ID \(or maxmind.account_id\) is not set/);
    expect(() => resolveCredentials(base)).toThrow(/no MaxMind credentials/);
    expect(() => resolveCredentials({ ...base, conf: { path: '/etc/GeoIP.conf', unreadable: 'EACCES' } })).toThrow(/\/etc\/GeoIP.conf cannot be read: EACCES/);
    expect(() => resolveCredentials({ ...base, conf: { ...conf, accountId: 'abc' } })).toThrow(/AccountID in \/etc\/GeoIP.conf is not a number/);
  });

  it('takes credentials from env or the config file, with file: references, and never shows them in errors', async () => {
    const keyFile = join(dir, 'license');
    await writeFile(keyFile, 'from-a-file\n');
    const cfg = resolveConfig({}, { MAXMIND_ACCOUNT_ID: '31' }, { maxmind: { license_key: `file:${keyFile}`, url: 'https://mirror.example.org' } });
    expect(cfg).toMatchObject({ maxmindAccountId: '31', maxmindLicenseKey: 'from-a-file', maxmindUrl: 'https://mirror.example.org' });
    expect(resolveConfig({}, {}, { maxmind: { account_id: 31 } }).maxmindAccountId).toBe('31');
    expect(() => resolveConfig({}, { MAXMIND_ACCOUNT_ID: 'not-a-number-secret' }, {})).toThrow(/MAXMIND_ACCOUNT_ID must be a MaxMind account ID \(a number\), got \(hidden\)/);
    expect(resolveConfig({}, {}, {}).maxmindUrl).toBe('https://download.maxmind.com');
  });

  it('accepts only edition IDs that are safe file names', () => {
    expect(parseEditions('GeoLite2-City,GeoIP2-ISP', 'x')).toEqual(['GeoLite2-City', 'GeoIP2-ISP']);
    for (const bad of ['../x', 'a/b', 'Geo\u0000Lite', '.hidden', `x${'y'.repeat(64)}`]) expect(() => parseEditions(bad, 'x')).toThrow(UsageError);
    expect(() => parseEditions(Array.from({ length: 17 }, (_, i) => `E${i}`).join(','), 'x')).toThrow(/at most 16/);
  });

  it('sends Basic auth over https, or plain http on loopback only', () => {
    expect(() => checkServerUrl('https://download.maxmind.com')).not.toThrow();
    expect(() => checkServerUrl('http://127.0.0.1:8083')).not.toThrow();
    expect(() => checkServerUrl('http://download.maxmind.com')).toThrow(UsageError);
    expect(() => checkServerUrl('ftp://127.0.0.1')).toThrow(UsageError);
  });
});
