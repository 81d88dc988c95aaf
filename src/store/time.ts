/**
 * Every timestamp we store or return is one text form: ISO-8601 UTC with
 * microseconds, `2024-01-05T17:09:34.399033Z`. One fixed width means text
 * comparison equals time comparison on SQLite, and both dialects read back alike.
 */
export function isoMicros(input: Date | string | number): string {
  if (typeof input === 'string') {
    const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}(?::?\d{2})?)$/.exec(input);
    if (m && (m[4] === 'Z' || /^[+-]00(:?00)?$/.test(m[4]))) {
      const frac = (m[3] ?? '').padEnd(6, '0').slice(0, 6);
      return `${m[1]}T${m[2]}.${frac}Z`;
    }
    if (m) {
      // Offset form: shift to UTC, keep the sub-millisecond digits.
      const frac = (m[3] ?? '').padEnd(6, '0').slice(0, 6);
      const ms = Date.parse(`${m[1]}T${m[2]}${normaliseOffset(m[4])}`);
      if (Number.isNaN(ms)) throw new RangeError(`invalid timestamp: ${input}`);
      return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
    }
    const ms = Date.parse(input);
    if (Number.isNaN(ms)) throw new RangeError(`invalid timestamp: ${input}`);
    return isoMicros(ms);
  }
  const d = input instanceof Date ? input : new Date(input);
  const s = d.toISOString(); // 2024-01-05T17:09:34.399Z
  return `${s.slice(0, 23)}000Z`;
}

function normaliseOffset(off: string): string {
  if (off.length === 3) return `${off}:00`;
  if (off.length === 5) return `${off.slice(0, 3)}:${off.slice(3)}`;
  return off;
}

export function nowIso(): string {
  return isoMicros(new Date());
}

/** UTC calendar day, `YYYY-MM-DD`, used for per-day API quotas. */
export function utcDay(d: Date = new Date()): string {
  return d.toISOString().slice(0, 10);
}

export function addSeconds(iso: string, seconds: number): string {
  return isoMicros(Date.parse(iso) + seconds * 1000);
}
