import { Option, type Command } from 'commander';
import { loadConfigFile, resolveConfig } from '../config/config.js';
import { describeLimit, type Limit } from '../enrich/refresh.js';
import { ipArgument } from '../enrich/ip-scope.js';
import { refreshDoneLine, refreshFailure, runRefresh } from '../orchestrate/refresh-run.js';
import { openMaxmind } from '../enrich/sources/maxmind.js';
import { UsageError } from '../errors.js';
import { StatusEmitter } from '../status/emitter.js';
import { createProgress, progressIntervalMs, progressMode, refreshStatusToProgress } from '../status/progress.js';
import { openStore } from '../store/store.js';
import { parseDbUrl } from '../store/url.js';
import { registerGeoipMaintenance } from './enrich-geoip.js';
import { addDbOptions, consoleLogger, dbFlag, defaultStatusDir, interruptSignal, newProgram, runProgram } from './main.js';

function parseLimit(flag: string, raw: string | undefined, zeroMeansAll: boolean): Limit {
  if (raw === undefined) return 'skip';
  if (raw.toLowerCase() === 'all') return 'all';
  const n = /^\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  // Past 2^53 a number is no longer exact (and no database holds that many rows).
  if (!Number.isSafeInteger(n)) throw new UsageError(`${flag} must be a whole number ≥ 0 or "all", got ${JSON.stringify(raw)}`);
  if (n === 0) return zeroMeansAll ? 'all' : 'skip';
  return n;
}

interface RefreshOpts {
  db?: string; database?: string; config?: string; sessions?: string; files?: string; ips?: string; ip: string[];
  commitInterval?: string; statusDir?: string; verbose?: boolean; quiet?: boolean; staleDays?: string; maxmindDir?: string;
  cymruHost?: string; cymruPort?: string; cymruBatchSize?: string; cymruTimeout?: string; greynoiseUrl?: string; greynoiseRate?: string;
  greynoiseDailyQuota?: string; greynoiseMode?: string; virustotalUrl?: string; virustotalRate?: string; virustotalDailyQuota?: string; offline?: boolean;
}


async function runRefreshCommand(opts: RefreshOpts): Promise<void> {
  const sessions = parseLimit('--sessions', opts.sessions, false);
  const files = parseLimit('--files', opts.files, false);
  const ips = parseLimit('--ips', opts.ips, true);
  if (sessions === 'skip' && files === 'skip' && ips === 'skip' && !opts.ip.length) {
    throw new UsageError('nothing to refresh: give --sessions N, --files N or --ips N (0 = all stale IPs), or --ip ADDR');
  }
  const { db, database, config: configFile, sessions: _s, files: _f, ips: _i, verbose, quiet, ...flags } = opts;
  const ip = opts.ip.map(ipArgument);
  const cfg = resolveConfig({ ...flags, db: dbFlag({ db, database }) }, process.env, loadConfigFile(configFile, process.env));
  const progress = createProgress({ label: 'refresh', mode: progressMode({ verbose, quiet }), intervalMs: progressIntervalMs() });
  const logger = consoleLogger({ verbose, quiet }, (line) => progress.writeLine(line));
  let result;
  try {
    logger.info(`Using database ${parseDbUrl(cfg.db).display}`);
    const status = new StatusEmitter({
      dir: cfg.statusDir ?? defaultStatusDir(), logger, minIntervalMs: 1000, onUpdate: refreshStatusToProgress(progress),
    });
    status.prepare();
    const signal = interruptSignal();
    // Refresh updates what is there: a mistyped SQLite path must not become a new empty database.
    const store = await openStore(cfg.db, { create: false });
    try {
      result = await runRefresh(store, { sessions, files, ips, ipList: ip, config: cfg, logger, status, signal });
    } finally {
      await store.close();
    }
  } finally {
    progress.stop();
  }
  if (!verbose && !quiet) process.stdout.write(`${refreshDoneLine(result)}\n`);
  const failure = refreshFailure(result);
  if (failure) throw failure;
}

function sourceOptions(cmd: Command): Command {
  return cmd
    .option('--stale-days <n>', 'IPs enriched longer ago than this are refreshed (env COWRIE_STALE_DAYS)', undefined)
    .option('--maxmind-dir <dir>', 'folder with GeoLite2-City.mmdb / GeoLite2-ASN.mmdb (env COWRIE_MAXMIND_DIR)')
    .option('--cymru-host <host>', 'Team Cymru bulk whois host (default whois.cymru.com)')
    .option('--cymru-port <port>', 'Team Cymru bulk whois port (default 43)')
    .option('--cymru-batch-size <n>', 'IPs per Cymru bulk query (default 500)')
    .option('--cymru-timeout <seconds>', 'timeout per Cymru batch (default 30)')
    .option('--greynoise-url <url>', 'GreyNoise API base URL (default https://api.greynoise.io); key from env GREYNOISE_API_KEY')
    .option('--greynoise-rate <n>', 'GreyNoise requests per second, never exceeded (default 10)')
    .option('--greynoise-daily-quota <n>', 'GreyNoise calls per UTC day, shared through the database (default 10000)')
    .addOption(new Option('--greynoise-mode <mode>', 'community (GET /v3/community/IP) or enterprise (POST /v2/noise/multi/quick)').choices(['community', 'enterprise']))
    .option('--virustotal-url <url>', 'VirusTotal API base URL (default https://www.virustotal.com); key from env VT_API_KEY')
    .option('--virustotal-rate <n>', 'VirusTotal requests per minute (default 4, the public API limit)')
    .option('--virustotal-daily-quota <n>', 'VirusTotal calls per UTC day (default 500)')
    .option('--offline', 'MaxMind only: no network calls');
}

const program = newProgram('cowrie-enrich', 'Enrich attacker IPs (MaxMind, Team Cymru, GreyNoise), sessions and downloaded files (VirusTotal).');

sourceOptions(addDbOptions(program.command('refresh').description('refresh enrichment: sessions, then files, then IPs (three passes)')))
  .option('--sessions <n>', 'sessions to snapshot, counting those whose IPs this run enriches (snapshotted after the IP passes); 0 or omitted: skip; "all": every candidate')
  .option('--files <n>', 'downloaded files to look up on VirusTotal (0 or omitted: skip; "all")')
  .option('--ips <n>', 'at most N IPs needing enrichment (stale, never enriched or pending), most recently seen first (0 or "all": every one; omitted: skip)')
  .option('--ip <addr>', 'refresh this IP whatever its age (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--commit-interval <n>', 'rows per commit (default 100)')
  .option('--status-dir <dir>', `status JSON files (env COWRIE_STATUS_DIR; default ${defaultStatusDir()})`)
  .option('-v, --verbose', 'log [INFO] lines instead of a progress bar')
  .option('-q, --quiet', 'print nothing but errors')
  .action((opts: RefreshOpts) => runRefreshCommand(opts));

const geoip = program.command('geoip')
  .description('look up IPs in the local MaxMind databases (offline) and print JSON; `geoip update` / `geoip status` keep them current')
  .argument('<ips...>', 'addresses to look up')
  .option('--maxmind-dir <dir>', 'folder with the .mmdb files (env COWRIE_MAXMIND_DIR)')
  .action(async (ipsRaw: string[], opts: { maxmindDir?: string }) => {
    const ipsArg = ipsRaw.map(ipArgument);
    const cfg = resolveConfig({ maxmindDir: opts.maxmindDir }, process.env, loadConfigFile(undefined, process.env));
    const mm = await openMaxmind({ dir: cfg.maxmindDir, logger: consoleLogger({}) });
    try {
      for (const r of mm.lookup(ipsArg)) process.stdout.write(`${JSON.stringify({ ip: r.key, status: r.status, ...r.value })}\n`);
    } finally {
      mm.close();
    }
  });

registerGeoipMaintenance(geoip);

export { describeLimit };
await runProgram(program);
