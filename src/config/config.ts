import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { UsageError, errorMessage, redactUrlsIn } from '../errors.js';
import { escapeControl } from '../text.js';
import { DEFAULT_DB_URL } from '../store/url.js';
import { DEFAULT_SOURCES, SOURCE_NAMES, SOURCE_SETTINGS } from '../enrich/sources/index.js';
import { int, kebab, num, optStr, str, type Setting } from './setting.js';

export { kebab, type Setting } from './setting.js';

/**
 * One table of settings, resolved once: flag > env > config file > default.
 * `file` is the dotted key in the TOML config file; secrets accept `file:/path` references.
 * The core settings are here; each enrichment source declares its own (src/enrich/sources/).
 */
const sourceList = {
  schema: z.union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((n) => n.trim().toLowerCase()).filter((n) => n !== ''))
    .refine((names) => names.every((n) => SOURCE_NAMES.includes(n))),
  expect: `a comma-separated list of ${SOURCE_NAMES.join(', ')}`,
};

const CORE_SETTINGS = {
  db: { flag: 'db', env: 'COWRIE_DB_URL', file: 'db', def: DEFAULT_DB_URL, ...str },
  statusDir: { flag: 'statusDir', env: 'COWRIE_STATUS_DIR', file: 'status_dir', ...optStr },
  commitInterval: { flag: 'commitInterval', env: 'COWRIE_COMMIT_INTERVAL', file: 'enrichment.commit_interval', def: 100, ...int(1, 100_000) },
  staleDays: { flag: 'staleDays', env: 'COWRIE_STALE_DAYS', file: 'enrichment.stale_days', def: 30, ...num(0) },
  sources: { flag: 'sources', env: 'COWRIE_SOURCES', file: 'enrichment.sources', def: DEFAULT_SOURCES.join(','), ...sourceList },
  offline: { flag: 'offline', env: 'COWRIE_OFFLINE', file: 'enrichment.offline', def: false, schema: z.coerce.boolean(), expect: 'true or false' },
} satisfies Record<string, Setting>;

export const SETTINGS = { ...CORE_SETTINGS, ...SOURCE_SETTINGS };

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
