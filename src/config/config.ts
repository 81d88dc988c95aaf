import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { UsageError, errorMessage } from '../errors.js';
import { DEFAULT_DB_URL } from '../store/url.js';

/**
 * One table of settings, resolved once: flag > env > config file > default.
 * `file` is the dotted key in the TOML config file; secrets accept `file:/path` references.
 */
interface Setting {
  flag?: string;
  env?: string;
  file?: string;
  def?: unknown;
  schema: z.ZodType;
  secret?: boolean;
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const num = (min: number) => z.coerce.number().min(min);
const str = z.string().min(1);

export const SETTINGS = {
  db: { flag: 'db', env: 'COWRIE_DB_URL', file: 'db', def: DEFAULT_DB_URL, schema: str },
  statusDir: { flag: 'statusDir', env: 'COWRIE_STATUS_DIR', file: 'status_dir', schema: str.optional() },
  commitInterval: { flag: 'commitInterval', env: 'COWRIE_COMMIT_INTERVAL', file: 'enrichment.commit_interval', def: 100, schema: int(1, 100_000) },
  staleDays: { flag: 'staleDays', env: 'COWRIE_STALE_DAYS', file: 'enrichment.stale_days', def: 30, schema: num(0) },
  maxmindDir: { flag: 'maxmindDir', env: 'COWRIE_MAXMIND_DIR', file: 'maxmind.dir', schema: str.optional() },
  maxmindUrl: { flag: 'maxmindUrl', env: 'COWRIE_MAXMIND_URL', file: 'maxmind.url', def: 'https://download.maxmind.com', schema: z.string().url() },
  maxmindAccountId: { env: 'MAXMIND_ACCOUNT_ID', file: 'maxmind.account_id', schema: z.union([z.string().regex(/^\d{1,12}$/, 'an account ID is a number'), z.number().int().positive().transform(String)]).optional(), secret: true },
  maxmindLicenseKey: { env: 'MAXMIND_LICENSE_KEY', file: 'maxmind.license_key', schema: z.string().min(1).max(256).optional(), secret: true },
  cymruHost: { flag: 'cymruHost', env: 'COWRIE_CYMRU_HOST', file: 'cymru.host', def: 'whois.cymru.com', schema: str },
  cymruPort: { flag: 'cymruPort', env: 'COWRIE_CYMRU_PORT', file: 'cymru.port', def: 43, schema: int(1, 65535) },
  cymruBatchSize: { flag: 'cymruBatchSize', env: 'COWRIE_CYMRU_BATCH_SIZE', file: 'cymru.batch_size', def: 500, schema: int(1, 10_000) },
  cymruTimeout: { flag: 'cymruTimeout', env: 'COWRIE_CYMRU_TIMEOUT', file: 'cymru.timeout', def: 30, schema: num(0.1) },
  greynoiseUrl: { flag: 'greynoiseUrl', env: 'COWRIE_GREYNOISE_URL', file: 'greynoise.url', def: 'https://api.greynoise.io', schema: z.string().url() },
  greynoiseKey: { env: 'GREYNOISE_API_KEY', file: 'greynoise.api_key', schema: str.optional(), secret: true },
  greynoiseRate: { flag: 'greynoiseRate', env: 'COWRIE_GREYNOISE_RATE', file: 'greynoise.rate', def: 10, schema: num(0.01) },
  greynoiseDailyQuota: { flag: 'greynoiseDailyQuota', env: 'COWRIE_GREYNOISE_DAILY_QUOTA', file: 'greynoise.daily_quota', def: 10_000, schema: int(0) },
  greynoiseMode: { flag: 'greynoiseMode', env: 'COWRIE_GREYNOISE_MODE', file: 'greynoise.mode', def: 'community', schema: z.enum(['community', 'enterprise']) },
  virustotalUrl: { flag: 'virustotalUrl', env: 'COWRIE_VIRUSTOTAL_URL', file: 'virustotal.url', def: 'https://www.virustotal.com', schema: z.string().url() },
  virustotalKey: { env: 'VT_API_KEY', file: 'virustotal.api_key', schema: str.optional(), secret: true },
  virustotalRate: { flag: 'virustotalRate', env: 'COWRIE_VIRUSTOTAL_RATE', file: 'virustotal.rate_per_minute', def: 4, schema: num(0.01) },
  virustotalDailyQuota: { flag: 'virustotalDailyQuota', env: 'COWRIE_VIRUSTOTAL_DAILY_QUOTA', file: 'virustotal.daily_quota', def: 500, schema: int(0) },
  offline: { flag: 'offline', env: 'COWRIE_OFFLINE', file: 'enrichment.offline', def: false, schema: z.coerce.boolean() },
} satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;
export type Config = { [K in SettingName]: z.infer<(typeof SETTINGS)[K]['schema']> };

/** Load the TOML config file: --config, else COWRIE_CONFIG, else ./cowrie.toml when present. */
export function loadConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const file = explicit ?? env.COWRIE_CONFIG ?? (fs.existsSync('cowrie.toml') ? 'cowrie.toml' : undefined);
  if (!file) return {};
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config file ${file}: ${errorMessage(err)}`);
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`config file ${file} is not valid TOML: ${errorMessage(err).split('\n')[0]}`);
  }
}

function dig(obj: Record<string, unknown>, dotted: string): unknown {
  let cur: unknown = obj;
  for (const part of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** `file:/path/to/key` → the file's first line; anything else as given. */
export function resolveSecret(value: string, what: string): string {
  if (!value.startsWith('file:')) return value.trim();
  const p = value.slice(5);
  try {
    return fs.readFileSync(path.resolve(p), 'utf8').split('\n')[0].trim();
  } catch (err) {
    throw new UsageError(`cannot read ${what} from ${p}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
  }
}

function kebab(flag: string): string {
  return `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export function resolveConfig(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
  file: Record<string, unknown> = {},
): Config {
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(SETTINGS) as Array<[string, Setting]>) {
    let raw: unknown;
    let from = '';
    if (s.flag && flags[s.flag] !== undefined) { raw = flags[s.flag]; from = kebab(s.flag); }
    else if (s.env && env[s.env] !== undefined && env[s.env] !== '') { raw = env[s.env]; from = s.env; }
    else if (s.file && dig(file, s.file) !== undefined) { raw = dig(file, s.file); from = `config key ${s.file}`; }
    else raw = s.def;
    if (s.secret && typeof raw === 'string') raw = resolveSecret(raw, from);
    if (name === 'offline' && typeof raw === 'string') raw = !['0', 'false', 'no', ''].includes(raw.toLowerCase());
    const parsed = s.schema.safeParse(raw);
    if (!parsed.success) {
      const shown = s.secret ? '(hidden)' : JSON.stringify(raw);
      throw new UsageError(`invalid value ${shown} for ${from || name}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    }
    out[name] = parsed.data;
  }
  return out as Config;
}
