import { z } from 'zod';

/**
 * One setting, declared once: its flag (camelCase; `--kebab-case` on the command line), env name,
 * dotted key in the TOML config file, default, schema and help line. The config schema, the
 * `--help` groups, env names and the typed options the core receives all come from these.
 * Secrets accept `file:/path` references and are never shown.
 */
export interface Setting {
  flag?: string;
  env?: string;
  file?: string;
  def?: unknown;
  schema: z.ZodType;
  /** What a valid value is, for our own error message ("must be …"). */
  expect: string;
  secret?: boolean;
  /** One line for `--help` (the default and env name are appended); no help: not a flag of refresh. */
  help?: string;
  /** Placeholder shown in `--help`, e.g. `<n>`. */
  arg?: string;
  /** The TOML type a config-file value must have (flags and env are text and coerced); absent: any. */
  toml?: 'string' | 'number' | 'boolean';
  /** true/false from text: `0`, `false`, `no` and empty are false. */
  flagBool?: boolean;
}

export type Settings = Record<string, Setting>;
/** The typed values of a group of settings, as resolved from flags, env, file and defaults. */
export type SettingValues<S extends Settings> = { [K in keyof S]: z.infer<S[K]['schema']> };

export const int = (min: number, max = Number.MAX_SAFE_INTEGER) => ({
  schema: z.coerce.number().int().min(min).max(max),
  expect: max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`,
  toml: 'number' as const,
});
export const num = (min: number) => ({ schema: z.coerce.number().min(min).max(Number.MAX_SAFE_INTEGER), expect: `a number ≥ ${min}`, toml: 'number' as const });
export const str = { schema: z.string().min(1), expect: 'a non-empty text', toml: 'string' as const };
export const optStr = { schema: str.schema.optional(), expect: str.expect, toml: 'string' as const };
/** An API key: printable ASCII without spaces (undici would echo anything else in its error). */
export const apiKey = { schema: z.string().regex(/^[\x21-\x7e]{1,512}$/).optional(), expect: 'an API key without spaces or control characters', secret: true as const };
/** A contact address for a User-Agent header: bounded, printable, with an @. */
export const email = { schema: z.string().regex(/^[^\s@\x00-\x1f\x7f]{1,128}@[^\s@\x00-\x1f\x7f]{1,128}$/).optional(), expect: 'an e-mail address' };
/** An API base URL: http(s) only, and no credentials in it (keys come from their own settings, never printed). */
export const apiUrl = {
  schema: z.string().refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password;
    } catch {
      return false;
    }
  }),
  expect: 'an http:// or https:// URL without a user name or password (API keys come from their own settings)',
  toml: 'string' as const,
};

/** `greynoiseRate` → `--greynoise-rate`. */
export function kebab(flag: string): string {
  return `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
