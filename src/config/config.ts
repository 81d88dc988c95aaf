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
 */
const bool = { schema: z.coerce.boolean(), expect: 'true or false', toml: 'boolean' as const, flagBool: true };
/** A refresh limit: a whole number (0 = skip) or "all". */
const limit = {
  // No coercion of other types: `sessions = true` is a mistake, not 1.
  schema: z.union([z.literal('all'), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().regex(/^\d{1,15}$/).transform(Number)]),
  expect: 'a whole number ≥ 0 or "all"',
};
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
  // Workers sharing a database: how long an IP (file) a worker took stays its own without a renewal.
  leaseSeconds: { flag: 'leaseSeconds', env: 'COWRIE_LEASE_SECONDS', file: 'enrichment.lease_seconds', def: 60, ...int(5, 3600) },
  offline: { flag: 'offline', env: 'COWRIE_OFFLINE', file: 'enrichment.offline', def: false, ...bool },
  // cowrie-orchestrate: the refresh it runs after loading (cowrie-enrich refresh --ips/--sessions/--files).
  ipBatchSize: { flag: 'enrichIps', env: 'COWRIE_ENRICH_IPS', file: 'enrichment.ip_batch_size', def: 1000, ...int(0) },
  enrichSessions: { env: 'COWRIE_ENRICH_SESSIONS', file: 'enrichment.sessions', def: 0, ...limit },
  enrichFiles: { env: 'COWRIE_ENRICH_FILES', file: 'enrichment.files', def: 0, ...limit },
  maxmindAutoUpdate: { env: 'COWRIE_MAXMIND_AUTO_UPDATE', file: 'maxmind.auto_update', def: false, ...bool },
  maxmindUpdateAfterDays: { env: 'COWRIE_MAXMIND_UPDATE_AFTER_DAYS', file: 'maxmind.update_after_days', def: 7, ...int(1, 3650) },
} satisfies Record<string, Setting>;

export const SETTINGS = { ...CORE_SETTINGS, ...SOURCE_SETTINGS };

export type SettingName = keyof typeof SETTINGS;
export type Config = { [K in SettingName]: z.infer<(typeof SETTINGS)[K]['schema']> };

/** A config file is a few lines; anything bigger is a wrong path, not a config. */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** A `file:` reference holds one value (a key, a password, a URL): its first line. */
const MAX_REFERENCE_BYTES = 64 * 1024;
const MAX_SENSORS = 1000;
const MAX_LOGPATHS = 1000;

/** One `[[sensor]]` of a sensors.toml, validated, its paths made absolute. */
export interface SensorConfig {
  name: string;
  /** Files, folders or globs; relative ones are resolved against the config file's folder. */
  logpaths: string[];
  mode: 'delta' | 'bulk';
  enabled: boolean;
  /** false: the orchestrated refresh leaves out IPs seen only on this sensor. */
  enableAsnInventory: boolean;
}

/** Where a loaded config came from: for error lines (file, line) and to keep referenced values hidden. */
interface ConfigSource {
  file: string;
  text: string;
  /** Keys whose value came from an `env:`/`file:` reference: never shown in errors. */
  referenced: Set<string>;
  sensors: SensorConfig[];
}
const SOURCE = Symbol('config source');
type ConfigDoc = Record<string, unknown> & { [SOURCE]?: ConfigSource };

type KeyPath = Array<string | number>;

/** `sensor[1].logpath` for [sensor, 1, logpath]: the key as users see it in messages. */
function showKey(p: KeyPath): string {
  return p.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k), '');
}

function unquote(k: string): string {
  const t = k.trim();
  return (t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'")) ? t.slice(1, -1) : t;
}

const samePath = (a: KeyPath, b: KeyPath) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The line a key is written on, found by reading the TOML text the simple way (table headers,
 * `[[array]]` counts, `key =` lines); smol-toml keeps no positions. Undefined when not found
 * (inline tables, dotted keys): the message then names the key alone.
 */
export function keyLine(text: string, keyPath: KeyPath): number | undefined {
  const find = (want: KeyPath): number | undefined => {
    const lines = text.split('\n');
    let table: KeyPath = [];
    const counts = new Map<string, number>();
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i].trim();
      let m = /^\[\[([^\]]+)\]\]/.exec(l);
      if (m) {
        const parts = m[1].split('.').map(unquote);
        const n = (counts.get(parts.join('.')) ?? -1) + 1;
        counts.set(parts.join('.'), n);
        table = [...parts, n];
        if (samePath(table, want)) return i + 1;
        continue;
      }
      m = /^\[([^\]]+)\]/.exec(l);
      if (m) {
        table = m[1].split('.').map(unquote);
        if (samePath(table, want)) return i + 1;
        continue;
      }
      m = /^("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=/.exec(l);
      if (m && samePath([...table, unquote(m[1])], want)) return i + 1;
    }
    return undefined;
  };
  // An element of an array value (logpath[2]) is on its key's line, or near it.
  const p = [...keyPath];
  let line = find(p);
  while (line === undefined && p.length > 1 && typeof p[p.length - 1] === 'number' && typeof p[p.length - 2] === 'string') {
    p.pop();
    line = find(p);
  }
  return line;
}

/** `config file F, line N: ` — where a mistake is, as precisely as known. */
function at(file: string, text: string | undefined, keyPath: KeyPath): string {
  const line = text === undefined ? undefined : keyLine(text, keyPath);
  return `config file ${escapeControl(file)}${line ? `, line ${line}` : ''}: `;
}

/**
 * The shape a config file may have: exactly the `file` keys of SETTINGS plus `[[sensor]]`, strict
 * at every level, so a misspelt key is an error instead of a setting silently left at its default.
 */
function fileSchema(): z.ZodType {
  type Tree = { [k: string]: Tree | null };
  const tree: Tree = { sensor: null };
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

function checkFileKeys(file: string, text: string, doc: Record<string, unknown>): void {
  const r = fileSchema().safeParse(doc);
  if (r.success) return;
  const issue = r.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => escapeControl(showKey([...issue.path as KeyPath, k]))).join(', ');
    throw new UsageError(`${at(file, text, [...issue.path as KeyPath, issue.keys[0]])}unknown key ${keys}`);
  }
  throw new UsageError(`${at(file, text, issue.path as KeyPath)}${escapeControl(showKey(issue.path as KeyPath))} must be a table of settings`);
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/**
 * Every string value may be `env:NAME` (that variable) or `file:/path` (the file's first line;
 * relative to the config file's folder), so secrets stay out of the config file.
 */
function resolveReferences(node: unknown, keyPath: KeyPath, ctx: { file: string; text: string; env: NodeJS.ProcessEnv; referenced: Set<string> }): unknown {
  if (Array.isArray(node)) return node.map((v, i) => resolveReferences(v, [...keyPath, i], ctx));
  if (node !== null && typeof node === 'object' && !(node instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = resolveReferences(v, [...keyPath, k], ctx);
    return out;
  }
  if (typeof node !== 'string' || !/^(env|file):/.test(node)) return node;
  const where = `${at(ctx.file, ctx.text, keyPath)}${escapeControl(showKey(keyPath))}`;
  ctx.referenced.add(showKey(keyPath));
  if (node.startsWith('env:')) {
    const name = node.slice(4);
    if (!ENV_NAME.test(name)) throw new UsageError(`${where}: ${JSON.stringify(escapeControl(node.slice(0, 140)))} is not env:NAME with a variable name`);
    const v = ctx.env[name];
    if (v === undefined || v === '') throw new UsageError(`${where}: environment variable ${name} is not set`);
    return v.trim();
  }
  const p = path.resolve(path.dirname(ctx.file), node.slice(5));
  let first: string;
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'not a file' });
    if (st.size > MAX_REFERENCE_BYTES) throw Object.assign(new Error('too large'), { code: 'larger than 64 KiB' });
    first = fs.readFileSync(p, 'utf8').split('\n')[0].trim();
  } catch (err) {
    throw new UsageError(`${where}: cannot read ${escapeControl(p)} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
  }
  if (!first) throw new UsageError(`${where}: the first line of ${escapeControl(p)} is empty`);
  return first;
}

const SENSOR_EXPECT: Record<string, string> = {
  name: 'letters, digits, ".", "_" or "-", 1 to 64 characters',
  logpath: `a path or a list of 1 to ${MAX_LOGPATHS} paths (files, folders or globs)`,
  mode: '"delta" or "bulk"',
  enabled: 'true or false',
  enable_asn_inventory: 'true or false',
};

const sensorSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  logpath: z.union([z.string().min(1).max(4096), z.array(z.string().min(1).max(4096)).min(1).max(MAX_LOGPATHS)]),
  mode: z.enum(['delta', 'bulk']).default('delta'),
  enabled: z.boolean().default(true),
  enable_asn_inventory: z.boolean().default(true),
}).strict();

/** `[[sensor]]` tables: each valid, names unique, paths made absolute against the config's folder. */
function parseSensors(file: string, text: string, raw: unknown): SensorConfig[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new UsageError(`${at(file, text, ['sensor'])}sensor must be written as [[sensor]] tables`);
  if (raw.length > MAX_SENSORS) throw new UsageError(`${at(file, text, ['sensor'])}${raw.length} sensors; at most ${MAX_SENSORS}`);
  const out: SensorConfig[] = [];
  const seen = new Map<string, number>();
  raw.forEach((entry, i) => {
    const where = (k?: string) => `${at(file, text, k ? ['sensor', i, k] : ['sensor', i])}[[sensor]] #${i + 1}`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new UsageError(`${where()} must be a table`);
    const r = sensorSchema.safeParse(entry);
    if (!r.success) {
      const issue = r.error.issues[0];
      if (issue.code === 'unrecognized_keys') throw new UsageError(`${where(issue.keys[0])}: unknown key ${issue.keys.map(escapeControl).join(', ')}`);
      const key = String(issue.path[0]);
      if ((entry as Record<string, unknown>)[key] === undefined) throw new UsageError(`${where()}: ${key} is missing`);
      throw new UsageError(`${where(key)}: ${key} must be ${SENSOR_EXPECT[key] ?? 'valid'}`);
    }
    const s = r.data;
    const first = seen.get(s.name);
    if (first !== undefined) throw new UsageError(`${where('name')}: name ${s.name} is also the name of [[sensor]] #${first + 1}`);
    seen.set(s.name, i);
    const paths = typeof s.logpath === 'string' ? [s.logpath] : s.logpath;
    out.push({
      name: s.name, mode: s.mode, enabled: s.enabled, enableAsnInventory: s.enable_asn_inventory,
      logpaths: paths.map((p) => path.resolve(path.dirname(path.resolve(file)), p)),
    });
  });
  return out;
}

/** Load the TOML config file: --config, else COWRIE_CONFIG, else ./cowrie.toml when present. */
export function loadConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const file = explicit ?? env.COWRIE_CONFIG ?? (fs.existsSync('cowrie.toml') ? 'cowrie.toml' : undefined);
  if (!file) return {};
  let text: string;
  try {
    if (fs.statSync(file).size > MAX_CONFIG_BYTES) throw new UsageError(`config file ${escapeControl(file)} is larger than 1 MiB: not a config file`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read config file ${escapeControl(file)}: ${errorMessage(err)}`);
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const line = (err as { line?: unknown }).line;
    throw new UsageError(`config file ${escapeControl(file)}${typeof line === 'number' ? `, line ${line}` : ''} is not valid TOML: ${errorMessage(err).split('\n')[0]}`);
  }
  checkFileKeys(file, text, parsed);
  const referenced = new Set<string>();
  const doc = resolveReferences(parsed, [], { file, text, env, referenced }) as ConfigDoc;
  const sensors = parseSensors(file, text, doc.sensor);
  Object.defineProperty(doc, SOURCE, { value: { file, text, referenced, sensors } satisfies ConfigSource, enumerable: false });
  return doc;
}

/** The `[[sensor]]` tables of a loaded config file (none for a plain cowrie.toml). */
export function sensorsOf(doc: Record<string, unknown>): SensorConfig[] {
  return (doc as ConfigDoc)[SOURCE]?.sensors ?? [];
}

/** The config file a document was loaded from, if any. */
export function configFileOf(doc: Record<string, unknown>): string | undefined {
  return (doc as ConfigDoc)[SOURCE]?.file;
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
  const source = (file as ConfigDoc)[SOURCE];
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(SETTINGS) as Array<[string, Setting]>) {
    let raw: unknown;
    let from = '';
    let hidden = s.secret === true;
    let fromFile = false;
    if (s.flag && flags[s.flag] !== undefined) { raw = flags[s.flag]; from = kebab(s.flag); }
    else if (s.env && env[s.env] !== undefined && env[s.env] !== '') { raw = env[s.env]; from = s.env; }
    else if (s.file && dig(file, s.file) !== undefined) {
      raw = dig(file, s.file);
      fromFile = true;
      from = source ? `${at(source.file, source.text, s.file.split('.'))}${s.file}` : `config key ${s.file}`;
      // A value from an env:/file: reference is text whatever the key's type; it may be a secret.
      if (source?.referenced.has(s.file)) hidden = true;
    }
    else raw = s.def;
    const typed = fromFile && s.toml !== undefined && !source?.referenced.has(s.file!);
    if (s.secret && typeof raw === 'string') raw = resolveSecret(raw, from);
    if (s.flagBool && typeof raw === 'string' && !typed) raw = !['0', 'false', 'no', ''].includes(raw.toLowerCase());
    const parsed = typed && typeof raw !== s.toml ? null : s.schema.safeParse(raw);
    if (!parsed?.success) {
      const shown = hidden ? '(hidden)' : JSON.stringify(typeof raw === 'string' ? redactUrlsIn(raw) : raw);
      throw new UsageError(`${from || name} must be ${s.expect}, got ${shown}`);
    }
    out[name] = parsed.data;
  }
  return out as Config;
}
