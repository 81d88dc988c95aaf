/** A sensors.toml world: three sensors' logs, the simulators, and a config pointing at both. */
import fs from 'node:fs';
import path from 'node:path';
import { generateLogs, type GenerateLogsSummary } from '../../src/sim/log-generator.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { buildWorld, GN_KEY, VT_KEY, type World, type WorldOptions } from '../helpers/world.js';

export interface SensorsWorld {
  w: World;
  logs: GenerateLogsSummary;
  config: string;
  /** The environment the config's env: references need (and nothing that would override the file). */
  env: NodeJS.ProcessEnv;
  orchestrate(args: string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult>;
}

export const GN_ENV = 'ORCH_TEST_GN_SECRET';

/**
 * Logs of three generated sensors (honeypot-01, honeypot-02, dshield-01) under `<dir>/logs`; the
 * config names them with `sensors` (TOML text) and reads the GreyNoise key through env: and the
 * VirusTotal key through file: (relative to the config's folder).
 */
export async function sensorsWorld(o: { url: string; sensors: string; enrichment?: string; extra?: string; maxmind?: string; world?: Partial<WorldOptions> }): Promise<SensorsWorld> {
  const w = await buildWorld({ url: o.url, ...o.world });
  const logs = await generateLogs({ outDir: path.join(w.dir, 'logs'), sessions: 90, ips: 40, sensors: 3, days: 2, seed: 11 });
  fs.writeFileSync(path.join(w.dir, 'vt.key'), `${VT_KEY}\n`, { mode: 0o600 });
  const config = path.join(w.dir, 'sensors.toml');
  fs.writeFileSync(config, [
    `db = ${JSON.stringify(o.url)}`,
    `status_dir = ${JSON.stringify(w.statusDir)}`,
    o.extra ?? '',
    '[maxmind]', o.maxmind ?? `dir = ${JSON.stringify(w.mmdbDir)}`,
    '[cymru]', 'host = "127.0.0.1"', `port = ${w.cymru.port}`,
    '[greynoise]', `url = "${w.greynoise.url}"`, 'rate = 200', `api_key = "env:${GN_ENV}"`,
    '[virustotal]', `url = "${w.virustotal.url}"`, 'rate_per_minute = 6000', 'api_key = "file:vt.key"',
    '[enrichment]', 'ip_batch_size = 0', o.enrichment ?? '',
    o.sensors,
  ].join('\n'));
  const env = { COWRIE_CONFIG: '', XDG_CACHE_HOME: w.dir, [GN_ENV]: GN_KEY, GREYNOISE_API_KEY: '', VT_API_KEY: '' };
  return {
    w, logs, config, env,
    orchestrate: (args, opts = {}) => runCli('cowrie-orchestrate', ['--config', config, ...args], { cwd: w.dir, env: { ...env, ...opts.env }, timeoutMs: opts.timeoutMs ?? 90_000 }),
  };
}

/** Every file under a folder, as text (status files). */
export function folderText(dir: string): string {
  if (!fs.existsSync(dir)) return '';
  return fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('\n');
}
