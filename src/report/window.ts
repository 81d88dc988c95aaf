import { UsageError } from '../errors.js';
import type { SqlRunner } from '../store/store.js';
import { isoMicros } from '../store/time.js';

/** A report window: sessions whose first event lies in [since, until] (inclusive), on these sensors (all when empty). */
export interface ReportWindow {
  since: string;
  until: string;
  sensors: string[];
}

const DURATION = /^(\d{1,6})([dhm])$/;
const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000 } as const;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
export const DEFAULT_SPAN = '7d';

/** `30d`, `24h`, `90m` → milliseconds; null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  const m = DURATION.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : null;
}

/** A date or timestamp flag → ISO micros. A bare date means the start of that UTC day, or its end for `--until`. */
function parseDate(flag: string, text: string, endOfDay: boolean): string {
  const t = text.trim();
  if (DATE_ONLY.test(t)) {
    const ms = Date.parse(`${t}T00:00:00Z`);
    if (!Number.isNaN(ms)) return endOfDay ? `${t}T23:59:59.999999Z` : isoMicros(ms);
  } else if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/.test(t)) {
    try {
      return isoMicros(/[zZ]|[+-]\d{2}:?\d{2}$/.test(t) ? t : `${t}Z`);
    } catch { /* reported below */ }
  }
  throw new UsageError(`${flag} ${JSON.stringify(text.slice(0, 40))}: expected a duration like 7d, 24h, 90m or a date like 2024-01-31 or 2024-01-31T12:00:00Z`);
}

const minusMs = (iso: string, ms: number) => isoMicros(Date.parse(iso) - ms).slice(0, 23) + iso.slice(23);

/**
 * `--until` defaults to the newest event in the database and `--since` to 7 days before it, so a
 * report of old logs is not empty. A duration in `--since` counts back from the window's end.
 */
export async function resolveWindow(db: SqlRunner, o: { since?: string; until?: string; sensors?: string[]; now?: Date }): Promise<ReportWindow> {
  let until: string;
  if (o.until !== undefined) until = parseDate('--until', o.until, true);
  else {
    const [row] = await db.query<{ newest: string | null }>('SELECT max(last_event_at) AS newest FROM session_summaries');
    until = row?.newest ?? isoMicros(o.now ?? new Date());
  }
  const spec = o.since ?? DEFAULT_SPAN;
  const span = parseDuration(spec);
  const since = span !== null ? minusMs(until, span) : parseDate('--since', spec, false);
  if (since > until) throw new UsageError(`--since ${since} is after --until ${until}`);
  const sensors = [...new Set((o.sensors ?? []).map((s) => s.trim()).filter(Boolean))];
  if (sensors.length > 1000) throw new UsageError('--sensor: at most 1000 names');
  return { since, until, sensors };
}

/** The window of equal length just before this one (for totals' "previous"). */
export function previousWindow(w: ReportWindow): ReportWindow {
  const len = Date.parse(w.until) - Date.parse(w.since);
  const until = beforeMicro(w.since);
  return { since: minusMs(until, len), until, sensors: w.sensors };
}

/** One microsecond earlier: bounds are inclusive, so the previous window ends just before this one starts. */
function beforeMicro(iso: string): string {
  const micros = Number(iso.slice(20, 26));
  if (micros > 0) return `${iso.slice(0, 20)}${String(micros - 1).padStart(6, '0')}Z`;
  return `${isoMicros(Date.parse(iso) - 1000).slice(0, 20)}999999Z`;
}

/** `s.first_event_at BETWEEN … [AND s.sensor IN (…)]` for sessions aliased `s`, with its parameters. */
export function sessionFilter(w: ReportWindow, alias = 's'): { sql: string; params: unknown[] } {
  let sql = `${alias}.first_event_at >= ? AND ${alias}.first_event_at <= ?`;
  const params: unknown[] = [w.since, w.until];
  if (w.sensors.length) {
    sql += ` AND ${alias}.sensor IN (${w.sensors.map(() => '?').join(',')})`;
    params.push(...w.sensors);
  }
  return { sql, params };
}

/** One microsecond later (the counterpart of beforeMicro). */
function afterMicro(iso: string): string {
  const micros = Number(iso.slice(20, 26));
  if (micros < 999_999) return `${iso.slice(0, 20)}${String(micros + 1).padStart(6, '0')}Z`;
  return `${isoMicros(Date.parse(iso.slice(0, 19) + 'Z') + 1000).slice(0, 20)}000000Z`;
}

const DAY_MS = 86_400_000;
const dayStart = (day: string) => `${day}T00:00:00.000000Z`;
const dayEnd = (day: string) => `${day}T23:59:59.999999Z`;
const shiftDay = (day: string, n: number) => new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
const spanMs = (from: string, to: string) => Date.parse(to) - Date.parse(from);

/** Sessions whose first event lies in [from, to] (inclusive), counted with this sign. */
export interface SessionRange { from: string; to: string; sign: 1 | -1 }

/**
 * How a window is read: whole UTC days from the day rollups, and the parts of the edge days from
 * session rows. An edge day is either added in part (the sessions inside the window) or read whole
 * from the rollups less the part outside the window, whichever part is shorter, so at most half a
 * day of sessions is read at each edge. Sums are exact either way; distinct counts (IPs, sensors
 * per IP) are never taken from the rollups.
 */
export interface WindowPlan {
  days: { from: string; to: string } | null;
  ranges: SessionRange[];
}

export function planWindow(w: ReportWindow): WindowPlan {
  const first = w.since.slice(0, 10);
  const last = w.until.slice(0, 10);
  const ranges: SessionRange[] = [];
  const startsClean = w.since <= dayStart(first);
  const endsClean = w.until >= dayEnd(last);
  if (first === last) {
    if (startsClean && endsClean) return { days: { from: first, to: last }, ranges };
    if (spanMs(w.since, w.until) <= DAY_MS / 2) return { days: null, ranges: [{ from: w.since, to: w.until, sign: 1 }] };
    if (!startsClean) ranges.push({ from: dayStart(first), to: beforeMicro(w.since), sign: -1 });
    if (!endsClean) ranges.push({ from: afterMicro(w.until), to: dayEnd(last), sign: -1 });
    return { days: { from: first, to: last }, ranges };
  }
  let from = first;
  let to = last;
  if (!startsClean) {
    if (spanMs(w.since, dayEnd(first)) <= DAY_MS / 2) {
      ranges.push({ from: w.since, to: dayEnd(first), sign: 1 });
      from = shiftDay(first, 1);
    } else ranges.push({ from: dayStart(first), to: beforeMicro(w.since), sign: -1 });
  }
  if (!endsClean) {
    if (spanMs(dayStart(last), w.until) <= DAY_MS / 2) {
      ranges.push({ from: dayStart(last), to: w.until, sign: 1 });
      to = shiftDay(last, -1);
    } else ranges.push({ from: afterMicro(w.until), to: dayEnd(last), sign: -1 });
  }
  return { days: from <= to ? { from, to } : null, ranges };
}
