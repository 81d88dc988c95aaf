import os from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { kebab, loadConfigFile, resolveConfig, type Setting } from '../config/config.js';
import { DEFAULT_SOURCES, SOURCE_NAMES, SOURCES } from '../enrich/sources/index.js';
import { describeLimit, refresh, summaryLine, type Limit } from '../enrich/refresh.js';
import { ipArgument } from '../enrich/ip-scope.js';
import { openMaxmind } from '../enrich/sources/maxmind.js';
import { UserError, UsageError } from '../errors.js';
import { fmt } from '../log.js';
import { StatusEmitter } from '../status/emitter.js';
import { createProgress, progressIntervalMs, progressMode, refreshStatusToProgress } from '../status/progress.js';
import { openStore } from '../store/store.js';
import { parseDbUrl } from '../store/url.js';
import { registerGeoipMaintenance } from './enrich-geoip.js';
import { addDbOptions, consoleLogger, dbFlag, interruptSignal, newProgram, runProgram } from './main.js';

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
  sources?: string; offline?: boolean;
  /** Every source's own flags (declared in src/enrich/sources/). */
  [flag: string]: unknown;
}

export function defaultStatusDir(): string {
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'cowrie-enrich', 'status');
}

async function runRefresh(opts: RefreshOpts): Promise<void> {
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
      result = await refresh(store, { sessions, files, ips, ipList: ip, config: cfg, logger, status, signal });
    } catch (err) {
      status.finish((err as UserError).exitCode === 130 ? 'aborted' : 'failed');
      throw err;
    } finally {
      await store.close();
    }
    status.finish(result.failedSources.length ? 'failed' : 'complete');
  } finally {
    progress.stop();
  }
  if (!verbose && !quiet) {
    const r = result.ips;
    const extra = result.sessionsAfterIps ? `; ${fmt(result.sessionsAfterIps)} of the sessions snapshotted after the IP passes` : '';
    const ipFacts = r ? [
      `${fmt(r.errors)} IP errors`,
      ...(r.pending ? [`${fmt(r.pending)} IPs pending`] : []),
      ...(r.notPublic ? [`${fmt(r.notPublic)} non-public IPs`] : []),
    ].join(', ') : '';
    process.stdout.write(summaryLine(result)
      + (r ? ` (${ipFacts}; Cymru ${fmt(r.cymruEnriched)}/${fmt(r.needCymru)}; cache hits ${fmt(Object.values(r.cacheHits).reduce((a, b) => a + b, 0))}${extra}; ${r.seconds.wall.toFixed(1)} s)` : '') + '\n');
  }
  if (result.failedSources.length) throw new UserError(`source failed for the whole run: ${[...new Set(result.failedSources)].join(', ')} (the rest was enriched; affected items stay pending)`, 1);
}

/**
 * The refresh's source flags, one help group per source, from what each source declares
 * (flag, help, default, env name; secrets have no flag: env or config file only).
 */
function sourceOptions(cmd: Command): Command {
  cmd
    .option('--stale-days <n>', 'IPs enriched longer ago than this are refreshed (env COWRIE_STALE_DAYS)', undefined)
    .option('--sources <list>', `sources to use, in order (env COWRIE_SOURCES; default ${DEFAULT_SOURCES.join(',')}; also ${SOURCE_NAMES.filter((n) => !DEFAULT_SOURCES.includes(n)).join(', ') || 'none'})`)
    .option('--offline', 'MaxMind only: no network calls');
  for (const source of SOURCES) {
    const required = source.requires ? (source.settings as Record<string, Setting>)[source.requires.setting] : undefined;
    const keyed = required?.secret && required.env ? [required.env] : [];
    for (const setting of Object.values(source.settings as Record<string, Setting>)) {
      if (!setting.flag || !setting.help) continue;
      const facts = [
        ...(setting.def !== undefined ? [`default ${String(setting.def)}`] : []),
        ...(setting.env ? [`env ${setting.env}`] : []),
      ];
      const help = `${setting.help}${facts.length ? ` (${facts.join('; ')})` : ''}`;
      const option = new Option(`${kebab(setting.flag)} ${setting.arg ?? '<value>'}`, help).helpGroup(`${source.title}${keyed.length ? ` (key from env ${keyed.join(', ')})` : ''}:`);
      cmd.addOption(option);
    }
  }
  return cmd;
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
  .action((opts: RefreshOpts) => runRefresh(opts));

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
