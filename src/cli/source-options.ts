/**
 * The enrichment sources' flags, shared by `cowrie-enrich refresh` and `cowrie-loader follow --enrich`
 * so both take the same settings (flags, env, config keys) from what each source declares.
 */
import { Option, type Command } from 'commander';
import { kebab, type Setting } from '../config/config.js';
import { DEFAULT_SOURCES, SOURCE_NAMES, SOURCES } from '../enrich/sources/index.js';

/**
 * The refresh's source flags, one help group per source, from what each source declares
 * (flag, help, default, env name; secrets have no flag: env or config file only).
 */
export function sourceOptions(cmd: Command): Command {
  cmd
    .option('--stale-days <n>', 'IPs enriched longer ago than this are refreshed (env COWRIE_STALE_DAYS)', undefined)
    .option('--sources <list>', `sources to use, in order (env COWRIE_SOURCES; default ${DEFAULT_SOURCES.join(',')}; also ${SOURCE_NAMES.filter((n) => !DEFAULT_SOURCES.includes(n)).join(', ') || 'none'})`)
    .option('--offline', 'MaxMind only: no network calls')
    .option('--lease-seconds <n>', 'workers sharing a database: an IP or file this run takes stays its own this long without renewal (renewed while working; env COWRIE_LEASE_SECONDS; default 60)');
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
