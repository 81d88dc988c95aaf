/**
 * The identity form of a parsed Cowrie event: keys sorted at every level, text cleaned of what
 * PostgreSQL rejects (with a record of which fields changed), and every per-line cost bounded so
 * that one hostile line is one dead letter, never a failed batch.
 */

/** Cowrie events nest 3 levels at most; PostgreSQL's JSONB parser overflows its stack at a few thousand. */
export const MAX_JSON_DEPTH = 32;
/** Keys plus array elements in one line; a VirusTotal scan event has a few hundred. */
export const MAX_JSON_VALUES = 50_000;

/** NUL → removed, lone surrogates → U+FFFD. */
export function cleanText(s: string): string {
  if (s.indexOf('\0') !== -1) s = s.replaceAll('\0', '');
  return (s as unknown as { toWellFormed(): string }).toWellFormed();
}

// Only escapes can put NUL or lone surrogates into parsed strings (decoded text is well-formed).
export const NEEDS_CLEAN = /\\u(?:0000|[dD][89a-fA-F])/;

export type Limit = 'too_deep' | 'too_many_values' | 'number_out_of_range';

/** Thrown inside the walk only; parseLine turns it into a dead letter. */
export class LineLimit {
  constructor(readonly reason: Limit, readonly detail: string) {}
}

/**
 * The identity form of an event, built in one walk: object keys sorted at every level, strings
 * cleaned when the line needs it, and the per-line bounds checked. Objects are created without a
 * prototype so a `__proto__` key stays an ordinary key (a plain `{}` would swallow it). Arrays
 * without objects or numbers to check are shared, not copied (kex lists are long).
 */
class Canonicaliser {
  values = 0;
  /** Whether the subtree being walked had text cleaned. */
  dirty = false;

  constructor(readonly clean: boolean) {}

  value(v: unknown, depth: number): unknown {
    if (typeof v === 'string') return this.clean ? this.text(v) : v;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new LineLimit('number_out_of_range', 'a number outside the double range');
      return v;
    }
    if (v === null || typeof v !== 'object') return v;
    if (depth >= MAX_JSON_DEPTH) throw new LineLimit('too_deep', `nested deeper than ${MAX_JSON_DEPTH} levels`);
    if (Array.isArray(v)) {
      this.count(v.length);
      let plain = !this.clean;
      for (let i = 0; i < v.length && plain; i++) {
        const x = v[i];
        if ((x !== null && typeof x === 'object') || typeof x === 'number') plain = false;
      }
      if (plain) return v;
      const out = new Array<unknown>(v.length);
      for (let i = 0; i < v.length; i++) out[i] = this.value(v[i], depth + 1);
      return out;
    }
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    this.count(keys.length);
    const out = Object.create(null) as Record<string, unknown>;
    const pairs = keys.map((k) => [this.clean ? this.text(k) : k, k] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [k, orig] of pairs) out[k] = this.value(o[orig], depth + 1);
    return out;
  }

  count(n: number): void {
    this.values += n;
    if (this.values > MAX_JSON_VALUES) throw new LineLimit('too_many_values', `more than ${MAX_JSON_VALUES} keys and array elements`);
  }

  text(s: string): string {
    const c = cleanText(s);
    if (c !== s) this.dirty = true;
    return c;
  }
}

/**
 * The event's canonical copy and the names of its top-level fields that were cleaned. Keys that
 * clean to the same text (`a` and `a\u0000`) keep the last one, as JSON.parse does with repeats.
 */
export function canonicalEvent(ev: Record<string, unknown>, clean: boolean): { event: Record<string, unknown>; cleaned: string[] } {
  const walk = new Canonicaliser(clean);
  const keys = Object.keys(ev);
  walk.count(keys.length);
  const fields = new Map<string, unknown>();
  const cleaned = new Set<string>();
  for (const k of keys) {
    walk.dirty = false;
    const name = clean ? walk.text(k) : k;
    fields.set(name, walk.value(ev[k], 1));
    if (walk.dirty) cleaned.add(name);
  }
  const event = Object.create(null) as Record<string, unknown>;
  for (const k of [...fields.keys()].sort()) event[k] = fields.get(k);
  return { event, cleaned: [...cleaned].sort() };
}
