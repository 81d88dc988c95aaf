import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { UsageError, errorMessage, redactUrlsIn } from '../errors.js';
import { escapeControl } from '../text.js';
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
  /** What a valid value is, for our own error message ("must be …"). */
  expect: string;
  secret?: boolean;
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => ({
  schema: z.coerce.number().int().min(min).max(max),
  expect: max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`,
});
const num = (min: number) => ({ schema: z.coerce.number().min(min).max(Number.MAX_SAFE_INTEGER), expect: `a number ≥ ${min}` });
const str = { schema: z.string().min(1), expect: 'a non-empty text' };
const optStr = { schema: str.schema.optional(), expect: str.expect };
/** An API base URL: http(s) only, and no credentials in it (keys come from their own settings, never printed). */
const apiUrl = {
  schema: z.string().refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password;
    } catch {
      return false;
    }
  }),
  expect: 'an http:// or https:// URL without a user name or password (API keys come from their own settings)',
};

export const SETTINGS = {
  db: { flag: 'db', env: 'COWRIE_DB_URL', file: 'db', def: DEFAULT_DB_URL, ...str },
  statusDir: { flag: 'statusDir', env: 'COWRIE_STATUS_DIR', file: 'status_dir', ...optStr },
  commitInterval: { flag: 'commitInterval', env: 'COWRIE_COMMIT_INTERVAL', file: 'enrichment.commit_interval', def: 100, ...int(1, 100_000) },
  staleDays: { flag: 'staleDays', env: 'COWRIE_STALE_DAYS', file: 'enrichment.stale_days', def: 30, ...num(0) },
  maxmindDir: { flag: 'maxmindDir', env: 'COWRIE_MAXMIND_DIR', file: 'maxmind.dir', ...optStr },
  maxmindUrl: { flag: 'maxmindUrl', env: 'COWRIE_MAXMIND_URL', file: 'maxmind.url', def: 'https://download.maxmind.com', ...apiUrl },
  maxmindAccountId: { env: 'MAXMIND_ACCOUNT_ID', file: 'maxmind.account_id', schema: z.union([z.string().regex(/^\d{1,12}$/), z.number().int().positive().transform(String)]).optional(), expect: 'a MaxMind account ID (a number)', secret: true },
  maxmindLicenseKey: { env: 'MAXMIND_LICENSE_KEY', file: 'maxmind.license_key', schema: z.string().min(1).max(256).optional(), expect: 'a MaxMind licence key', secret: true },
  cymruHost: { flag: 'cymruHost', env: 'COWRIE_CYMRU_HOST', file: 'cymru.host', def: 'whois.cymru.com', ...str },
  cymruPort: { flag: 'cymruPort', env: 'COWRIE_CYMRU_PORT', file: 'cymru.port', def: 43, ...int(1, 65535) },
  cymruBatchSize: { flag: 'cymruBatchSize', env: 'COWRIE_CYMRU_BATCH_SIZE', file: 'cymru.batch_size', def: 500, ...int(1, 10_000) },
  cymruTimeout: { flag: 'cymruTimeout', env: 'COWRIE_CYMRU_TIMEOUT', file: 'cymru.timeout', def: 30, ...num(0.1) },
  greynoiseUrl: { flag: 'greynoiseUrl', env: 'COWRIE_GREYNOISE_URL', file: 'greynoise.url', def: 'https://api.greynoise.io', ...apiUrl },
  greynoiseKey: { env: 'GREYNOISE_API_KEY', file: 'greynoise.api_key', ...optStr, secret: true },
  greynoiseRate: { flag: 'greynoiseRate', env: 'COWRIE_GREYNOISE_RATE', file: 'greynoise.rate', def: 10, ...num(0.01) },
  greynoiseDailyQuota: { flag: 'greynoiseDailyQuota', env: 'COWRIE_GREYNOISE_DAILY_QUOTA', file: 'greynoise.daily_quota', def: 10_000, ...int(0) },
  greynoiseMode: { flag: 'greynoiseMode', env: 'COWRIE_GREYNOISE_MODE', file: 'greynoise.mode', def: 'community', schema: z.enum(['community', 'enterprise']), expect: 'community or enterprise' },
  virustotalUrl: { flag: 'virustotalUrl', env: 'COWRIE_VIRUSTOTAL_URL', file: 'virustotal.url', def: 'https://www.virustotal.com', ...apiUrl },
  virustotalKey: { env: 'VT_API_KEY', file: 'virustotal.api_key', ...optStr, secret: true },
  virustotalRate: { flag: 'virustotalRate', env: 'COWRIE_VIRUSTOTAL_RATE', file: 'virustotal.rate_per_minute', def: 4, ...num(0.01) },
  virustotalDailyQuota: { flag: 'virustotalDailyQuota', env: 'COWRIE_VIRUSTOTAL_DAILY_QUOTA', file: 'virustotal.daily_quota', def: 500, ...int(0) },
  offline: { flag: 'offline', env: 'COWRIE_OFFLINE', file: 'enrichment.offline', def: false, schema: z.coerce.boolean(), expect: 'true or false' },
} satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;
export type Config = { [K in SettingName]: z.infer<(typeof SETTINGS)[K]['schema']> };

/** A config file is a few lines; anything bigger is a wrong path, not a config. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * The shape a config file may have: exactly the `file` keys of SETTINGS, strict at every level,
 * so a misspelt key is an error instead of a setting silently left at its default.
 */
function fileSchema(): z.ZodType {
  type Tree = { [k: string]: Tree | null };
  const tree: Tree = {};
  for (const s of Object.values(SETTINGS) as Setting[]) {
    if (!s.file) continue;
    const parts = s.file.split('.');
    let node = tree;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Tree;
    node[parts[parts.length - 1]] = null;
  }
  const build = (t: Tree): z.ZodType => z.object(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v === null ? z.unknown().optional() : build(v).optional()]))).strict();
  return build(tree);
}

function checkFileKeys(file: string, doc: Record<string, unknown>): void {
  const r = fileSchema().safeParse(doc);
  if (r.success) return;
  const issue = r.error.issues[0];
  const at = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => escapeControl(at ? `${at}.${k}` : k)).join(', ');
    throw new UsageError(`config file ${escapeControl(file)}: unknown key ${keys}`);
  }
  throw new UsageError(`config file ${escapeControl(file)}: ${escapeControl(at)} must be a table of settings`);
}

/** Load the TOML config file: --config, else COWRIE_CONFIG, else ./cowrie.toml when present. */
export function loadConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const file = explicit ?? env.COWRIE_CONFIG ?? (fs.existsSync('cowrie.toml') ? 'cowrie.toml' : undefined);
  if (!file) return {};
  let text: string;
  try {
    if (fs.statSync(file).size > MAX_CONFIG_BYTES) throw new UsageError(`config file ${file} is larger than 1 MiB: not a config file`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read config file ${file}: ${errorMessage(err)}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`config file ${file} is not valid TOML: ${errorMessage(err).split('\n')[0]}`);
  }
  checkFileKeys(file, doc);
  return doc;
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
      const shown = s.secret ? '(hidden)' : JSON.stringify(typeof raw === 'string' ? redactUrlsIn(raw) : raw);
      throw new UsageError(`${from || name} must be ${s.expect}, got ${shown}`);
    }
    out[name] = parsed.data;
  }
  return out as Config;
}
