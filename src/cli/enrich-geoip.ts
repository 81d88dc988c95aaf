/**
 * `cowrie-enrich geoip update` and `geoip status`: keep the MaxMind databases current within
 * MaxMind's download limits (docs/OPERATIONS.md "MaxMind updates").
 */
import type { Command } from 'commander';
import { loadConfigFile, resolveConfig } from '../config/config.js';
import { DEFAULT_GEOIP_CONF, readGeoipConf, type GeoipConf } from '../enrich/maxmind-update/geoip-conf.js';
import { checkServerUrl, resolveCredentials, resolveTarget, type UpdateSettingsInput } from '../enrich/maxmind-update/settings.js';
import { databaseStatus } from '../enrich/maxmind-update/status.js';
import { updateDatabases, type EditionResult } from '../enrich/maxmind-update/update.js';
import { UsageError, UserError } from '../errors.js';
import { fmt } from '../log.js';
import { escapeControl } from '../text.js';
import { consoleLogger, interruptSignal, VERSION } from './main.js';

interface GeoipCommonOpts {
  maxmindDir?: string;
  editions?: string;
  geoipConf?: string;
  config?: string;
}

/** --geoip-conf, else GEOIPUPDATE_CONF_FILE (as geoipupdate reads it; empty means none), else /etc/GeoIP.conf when present. */
export async function loadGeoipConf(opts: GeoipCommonOpts, env: NodeJS.ProcessEnv): Promise<GeoipConf | null> {
  if (opts.geoipConf !== undefined) return readGeoipConf(opts.geoipConf, true);
  const fromEnv = env.GEOIPUPDATE_CONF_FILE;
  if (fromEnv !== undefined) return fromEnv === '' ? null : readGeoipConf(fromEnv, true);
  return readGeoipConf(DEFAULT_GEOIP_CONF, false);
}

async function settingsInput(opts: GeoipCommonOpts & { maxmindUrl?: string }): Promise<UpdateSettingsInput> {
  const cfg = resolveConfig({ maxmindDir: opts.maxmindDir, maxmindUrl: opts.maxmindUrl }, process.env, loadConfigFile(opts.config, process.env));
  return { ...cfg, editions: opts.editions, conf: await loadGeoipConf(opts, process.env) };
}

function resultLine(r: EditionResult): string {
  switch (r.outcome) {
    case 'current':
      return `${r.edition}: up to date (built ${r.local.buildDate}${r.remoteDay ? `, server has ${r.remoteDay}` : ''}): ${r.local.path}`;
    case 'installed': {
      const was = r.previous ? `updated from the ${r.previous.buildDate} build to` : 'installed';
      const sum = r.checksum === 'verified' ? 'SHA-256 verified' : 'no .sha256 offered; archive and database checked';
      return `${r.edition}: ${was} the ${r.installed.buildDate} build (${fmt(r.bytes)} bytes downloaded, ${sum}): ${r.installed.path}`;
    }
    case 'failed':
      return `${r.edition}: not updated: ${r.message}`;
    case 'not-tried':
      return `${r.edition}: not tried (${r.because})`;
  }
}

async function runUpdate(opts: GeoipCommonOpts & { maxmindUrl?: string; force?: boolean; quiet?: boolean; verbose?: boolean }): Promise<void> {
  const input = await settingsInput(opts);
  const target = resolveTarget(input);
  const credentials = resolveCredentials(input);
  checkServerUrl(input.maxmindUrl);
  const results = await updateDatabases({
    ...target, baseUrl: input.maxmindUrl, credentials, force: opts.force,
    logger: consoleLogger({ quiet: opts.quiet, verbose: opts.verbose }), signal: interruptSignal(), userAgent: `cowrie-enrich/${VERSION}`,
  });
  for (const r of results) {
    if (r.outcome === 'installed' || (r.outcome === 'current' && !opts.quiet)) process.stdout.write(`${escapeControl(resultLine(r))}\n`);
  }
  const bad = results.filter((r) => r.outcome === 'failed' || r.outcome === 'not-tried');
  if (bad.length) throw new UserError(`${bad.map((r) => escapeControl(resultLine(r))).join('; ')}; their old files are untouched`, 1);
}

function parseMaxAge(raw: string | undefined): number {
  if (raw === undefined) return 30;
  if (!/^\d{1,5}$/.test(raw)) throw new UsageError(`--max-age-days takes a whole number of days, got ${JSON.stringify(escapeControl(raw.slice(0, 40)))}`);
  return Number(raw);
}

async function runStatus(opts: GeoipCommonOpts & { maxAgeDays?: string }): Promise<void> {
  const maxAge = parseMaxAge(opts.maxAgeDays);
  const target = resolveTarget(await settingsInput(opts));
  const rows = await databaseStatus(target.dir, target.editions, maxAge);
  const width = Math.max(...rows.map((r) => r.edition.length));
  for (const r of rows) {
    const built = r.buildDate ? `built ${r.buildDate}, ${r.ageDays} day${r.ageDays === 1 ? '' : 's'} old` : '';
    const health = r.health === 'old' ? `older than ${maxAge} days` : r.health;
    const cols = [r.edition.padEnd(width), health.padEnd(10), built, r.detail ?? '', r.path].filter(Boolean);
    process.stdout.write(`${escapeControl(cols.join('  '))}\n`);
  }
  const bad = rows.filter((r) => r.health !== 'ok');
  if (bad.length) {
    throw new UserError(`${bad.length} of ${rows.length} MaxMind databases missing, unusable or older than ${maxAge} days (${bad.map((r) => r.edition).join(', ')}): run \`cowrie-enrich geoip update\``, 1);
  }
}

function commonOptions(cmd: Command): Command {
  return cmd
    .option('--maxmind-dir <dir>', 'folder with the .mmdb files (env COWRIE_MAXMIND_DIR; else DatabaseDirectory in GeoIP.conf)')
    .option('--editions <list>', 'edition IDs, comma-separated (default: EditionIDs in GeoIP.conf, else GeoLite2-City,GeoLite2-ASN)')
    .option('--geoip-conf <file>', `a geoipupdate GeoIP.conf to read (env GEOIPUPDATE_CONF_FILE; default ${DEFAULT_GEOIP_CONF} when present)`)
    .option('--config <file>', 'TOML config file (env COWRIE_CONFIG; default ./cowrie.toml when present)');
}

/** Adds `update` and `status` under the `geoip` command. */
export function registerGeoipMaintenance(geoip: Command): void {
  // `geoip --maxmind-dir` (the lookup) must not swallow `geoip update --maxmind-dir`: options
  // belong to the command they follow, which commander needs set on every level above.
  for (let c: Command | null = geoip; c; c = c.parent) c.enablePositionalOptions();
  commonOptions(geoip.command('update').description('download newer MaxMind databases (a free HEAD check first; at most one download per edition)'))
    .option('--maxmind-url <url>', 'download server (env COWRIE_MAXMIND_URL; default https://download.maxmind.com)')
    .option('--force', 'download even when the local build is as new as the server\'s (counts against the daily limit)')
    .option('-q, --quiet', 'print only databases that changed, and errors')
    .option('-v, --verbose', 'log each step')
    .addHelpText('after', '\nCredentials: env MAXMIND_ACCOUNT_ID and MAXMIND_LICENSE_KEY, config maxmind.account_id / maxmind.license_key\n(file:/path references work), or AccountID / LicenseKey in the GeoIP.conf.\nExit codes: 0 all current or updated, 1 an edition could not be updated (old files untouched), 2 bad setup.')
    .action((opts) => runUpdate(opts))
    .exitOverride();
  commonOptions(geoip.command('status').description('show each MaxMind database\'s build date and age; exit 1 when one is missing or too old'))
    .option('--max-age-days <n>', 'older than this is a problem (default 30)')
    .action((opts) => runStatus(opts))
    .exitOverride();
}
