/**
 * The sources, in their default order. Adding one is a file in this folder and a line here;
 * `--sources` (config `enrichment.sources`, env COWRIE_SOURCES) enables, disables and orders them.
 */
import { abuseipdbSource } from './abuseipdb.js';
import { cymruSource } from './cymru.js';
import { dshieldSource } from './dshield.js';
import { greynoiseSource } from './greynoise.js';
import { internetdbSource } from './internetdb.js';
import { maxmindSource } from './maxmind.js';
import type { Logger } from '../../log.js';
import type { Source } from './source.js';
import { virustotalSource } from './virustotal.js';

export const SOURCES = [
  maxmindSource,
  cymruSource,
  greynoiseSource,
  virustotalSource,
  dshieldSource,
  abuseipdbSource,
  internetdbSource,
] as const;

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
/** Every source's settings, one table (the config schema, flags, env names and typed options come from it). */
export type SourceSettings = UnionToIntersection<(typeof SOURCES)[number]['settings']>;
export const SOURCE_SETTINGS = Object.assign({}, ...SOURCES.map((s) => s.settings)) as SourceSettings;

export const SOURCE_NAMES: readonly string[] = SOURCES.map((s) => s.name);
/** The default `--sources`: every source on by default, in registry order. */
export const DEFAULT_SOURCES: readonly string[] = SOURCES.filter((s) => s.defaultOn).map((s) => s.name);

/** The sources a run uses, in the order given (names already validated by the config). */
export function sourcesByName(names: readonly string[]): Source[] {
  return [...new Set(names)].map((n) => SOURCES.find((s) => s.name === n) as unknown as Source);
}

/**
 * The sources this run uses: `--sources`, in its order, less those that need a setting the
 * user has not given and are optional without it (`whenMissing: 'off'`); those that owe their
 * keys until a run has the setting (`'pending'`) stay, and the pipeline leaves their keys pending.
 */
export function enabledSources(config: { sources: readonly string[] }, logger: Logger): Source[] {
  const values = config as unknown as Record<string, unknown>;
  return sourcesByName(config.sources).filter((s) => {
    if (!s.requires || s.requires.whenMissing !== 'off' || values[s.requires.setting] !== undefined) return true;
    logger.debug(`${s.title} not used: ${s.requires.shown} is not set`);
    return false;
  });
}
