import { hash } from 'node:crypto';
import type { DialectAdapter, SqlRunner } from './dialects/types.js';

/**
 * Report facts: per-session credentials and commands, and when each password and command was
 * first seen per sensor. Built from the events an ingest transaction actually inserted (like the
 * summaries), so loading anything twice changes no count; merges are sums and least(), so files
 * load in any order to the same rows.
 */
export interface CredentialFact { sessionId: string; hash: string; username: string | null; password: string | null; attempts: number; successes: number }
export interface CommandFact { sessionId: string; hash: string; command: string | null; executions: number }
export interface FirstSeenFact { kind: FirstSeenKind; hash: string; sensor: string; value: string | null; firstSeen: string }
export type FirstSeenKind = 'password' | 'command';

export interface ReportFacts {
  credentials: CredentialFact[];
  commands: CommandFact[];
  firstSeen: FirstSeenFact[];
}

/** The fields of one event the facts read (a ParsedEvent-backed ingest row has them all). */
export interface FactEvent {
  sessionId: string | null;
  sensor: string | null;
  eventType: string;
  eventTimestamp: string;
  parsed: { username: string | null; password: string | null; input: string | null; loginSuccess: boolean; loginFailed: boolean };
}

const sha256 = (s: string) => hash('sha256', s, 'hex');
/** JSON keeps null apart from '' and a separator can never be forged inside a value. */
export const credentialHash = (username: string | null, password: string | null) => sha256(JSON.stringify([username, password]));
export const valueHash = (value: string | null) => sha256(JSON.stringify(value));

export class ReportFactsBuilder {
  readonly #credentials = new Map<string, CredentialFact>();
  readonly #commands = new Map<string, CommandFact>();
  readonly #firstSeen = new Map<string, FirstSeenFact>();

  add(e: FactEvent): void {
    // Same rule as the session summaries: only events of a session count.
    if (e.sessionId === null) return;
    const p = e.parsed;
    const sensor = e.sensor ?? '';
    if (p.loginSuccess || p.loginFailed) {
      const h = credentialHash(p.username, p.password);
      const key = `${e.sessionId}\u0001${h}`;
      let c = this.#credentials.get(key);
      if (!c) this.#credentials.set(key, (c = { sessionId: e.sessionId, hash: h, username: p.username, password: p.password, attempts: 0, successes: 0 }));
      c.attempts++;
      if (p.loginSuccess) c.successes++;
      this.#seen('password', p.password, sensor, e.eventTimestamp);
    } else if (e.eventType === 'cowrie.command.input') {
      const h = valueHash(p.input);
      const key = `${e.sessionId}\u0001${h}`;
      let c = this.#commands.get(key);
      if (!c) this.#commands.set(key, (c = { sessionId: e.sessionId, hash: h, command: p.input, executions: 0 }));
      c.executions++;
      this.#seen('command', p.input, sensor, e.eventTimestamp);
    }
  }

  #seen(kind: FirstSeenKind, value: string | null, sensor: string, ts: string): void {
    const h = valueHash(value);
    const key = `${kind}\u0001${h}\u0001${sensor}`;
    const f = this.#firstSeen.get(key);
    if (!f) this.#firstSeen.set(key, { kind, hash: h, sensor, value, firstSeen: ts });
    else if (ts < f.firstSeen) f.firstSeen = ts;
  }

  get size(): number {
    return this.#credentials.size + this.#commands.size + this.#firstSeen.size;
  }

  result(): ReportFacts {
    return { credentials: [...this.#credentials.values()], commands: [...this.#commands.values()], firstSeen: [...this.#firstSeen.values()] };
  }
}

/** Merge one transaction's facts into the report tables (called from the ingest batch write). */
export async function writeReportFacts(db: DialectAdapter, tx: SqlRunner, f: ReportFacts): Promise<void> {
  if (f.credentials.length) {
    await db.insertMany(tx, {
      table: 'session_credentials',
      columns: [['session_id', 'text'], ['credential_hash', 'text'], ['username', 'text'], ['password', 'text'], ['attempts', 'integer'], ['successes', 'integer']],
      conflict: `ON CONFLICT (session_id, credential_hash) DO UPDATE SET
        attempts = session_credentials.attempts + excluded.attempts, successes = session_credentials.successes + excluded.successes`,
    }, f.credentials.map((c) => [c.sessionId, c.hash, c.username, c.password, c.attempts, c.successes]));
  }
  if (f.commands.length) {
    await db.insertMany(tx, {
      table: 'session_commands',
      columns: [['session_id', 'text'], ['command_hash', 'text'], ['command', 'text'], ['executions', 'integer']],
      conflict: 'ON CONFLICT (session_id, command_hash) DO UPDATE SET executions = session_commands.executions + excluded.executions',
    }, f.commands.map((c) => [c.sessionId, c.hash, c.command, c.executions]));
  }
  if (f.firstSeen.length) {
    await db.insertMany(tx, {
      table: 'first_seen_values',
      columns: [['kind', 'text'], ['value_hash', 'text'], ['sensor', 'text'], ['value', 'text'], ['first_seen', 'timestamptz']],
      conflict: `ON CONFLICT (kind, value_hash, sensor) DO UPDATE SET first_seen = ${db.least('first_seen_values.first_seen', 'excluded.first_seen')}`,
    }, f.firstSeen.map((v) => [v.kind, v.hash, v.sensor, v.value, v.firstSeen]));
  }
}

const BACKFILL_PAGE = 20_000;

/**
 * Migration 2 on a database that already holds events: the same facts, read once from the stored
 * login and command events (a one-off scan; reports themselves never read raw_events).
 */
export async function backfillReportFacts(db: DialectAdapter, tx: SqlRunner): Promise<void> {
  type Row = { id: number | string; session_id: string | null; sensor: string | null; event_type: string; event_timestamp: string; username: unknown; password: unknown; input: unknown };
  const text = (v: unknown) => (v === null || v === undefined ? null : typeof v === 'string' ? v : String(v));
  let after = 0;
  for (;;) {
    const rows = await tx.query<Row>(
      `SELECT id, session_id, sensor, event_type, event_timestamp, payload ->> 'username' AS username, payload ->> 'password' AS password, payload ->> 'input' AS input
       FROM raw_events WHERE id > ? AND event_type IN ('cowrie.login.success', 'cowrie.login.failed', 'cowrie.command.input') ORDER BY id LIMIT ?`,
      [after, BACKFILL_PAGE],
    );
    if (!rows.length) return;
    const b = new ReportFactsBuilder();
    for (const r of rows) {
      b.add({
        sessionId: r.session_id, sensor: r.sensor, eventType: r.event_type, eventTimestamp: r.event_timestamp,
        parsed: {
          username: text(r.username), password: text(r.password), input: text(r.input),
          loginSuccess: r.event_type === 'cowrie.login.success', loginFailed: r.event_type === 'cowrie.login.failed',
        },
      });
    }
    await writeReportFacts(db, tx, b.result());
    after = Number(rows[rows.length - 1].id);
  }
}

/*
 * Report rollups (migration 4): per day × sensor sums of the sessions (report_daily) and of their
 * credentials and commands, plus all-time totals per credential and command. A session counts on
 * the UTC day of its first event, so a later load can move it (an earlier event of it arrives):
 * each batch reads the touched sessions before and after its writes and moves what changed.
 */

/** What the rollups hold for one session: its cell (day × sensor) and its measures there. */
interface SessionRollupState {
  day: string | null;
  sensor: string;
  events: number;
  loginAttempts: number;
  loginSuccess: boolean;
  commands: number;
  downloads: number;
}

/** The touched sessions as they were before this batch wrote (null: new session). */
export interface RollupBase {
  ids: string[];
  before: Map<string, SessionRollupState>;
}

const CHUNK = 500;
const marks = (n: number) => Array.from({ length: n }, () => '?').join(',');
const nz = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
const truthy = (v: unknown) => v === true || v === 1 || v === '1' || v === 't';

async function readSessionStates(tx: SqlRunner, ids: string[], lock: boolean): Promise<Map<string, SessionRollupState>> {
  const out = new Map<string, SessionRollupState>();
  const cols = 'session_id, sensor, first_event_at, event_count, login_attempts, login_success, command_count';
  for (let k = 0; k < ids.length; k += CHUNK) {
    const chunk = ids.slice(k, k + CHUNK);
    // The no-op UPDATE locks the rows on PostgreSQL, so a concurrent loader that touches the same
    // session waits for this commit and then reads what it wrote (a plain SELECT could read a
    // state that is stale by the time the upsert applies, and a move would count twice).
    const rows = await tx.query<Record<string, unknown>>(lock
      ? `UPDATE session_summaries SET event_count = event_count WHERE session_id IN (${marks(chunk.length)}) RETURNING ${cols}`
      : `SELECT ${cols} FROM session_summaries WHERE session_id IN (${marks(chunk.length)})`, chunk);
    if (!rows.length) continue;
    const files = new Map<string, number>();
    for (const f of await tx.query<Record<string, unknown>>(
      `SELECT session_id, count(*) AS n FROM files WHERE session_id IN (${marks(chunk.length)}) GROUP BY session_id`, chunk,
    )) files.set(String(f.session_id), nz(f.n));
    for (const r of rows) {
      const id = String(r.session_id);
      out.set(id, {
        day: r.first_event_at === null || r.first_event_at === undefined ? null : String(r.first_event_at).slice(0, 10),
        sensor: r.sensor === null || r.sensor === undefined ? '' : String(r.sensor),
        events: nz(r.event_count), loginAttempts: nz(r.login_attempts), loginSuccess: truthy(r.login_success),
        commands: nz(r.command_count), downloads: files.get(id) ?? 0,
      });
    }
  }
  return out;
}

/** Call before the batch's session writes (ingest-repo finish()). */
export async function lockSessionsForRollups(tx: SqlRunner, sessionIds: string[]): Promise<RollupBase> {
  const ids = [...new Set(sessionIds)].sort();
  return { ids, before: await readSessionStates(tx, ids, true) };
}

type DailySums = [sessions: number, events: number, loginAttempts: number, withLogins: number, loggedIn: number, successes: number, commands: number, downloads: number];

class Adder<V extends number[]> {
  readonly rows = new Map<string, { key: string[]; v: V }>();
  add(key: string[], v: V, sign: number): void {
    const k = key.join('\u0001');
    const row = this.rows.get(k);
    if (!row) this.rows.set(k, { key, v: v.map((x) => x * sign) as V });
    else for (let i = 0; i < v.length; i++) row.v[i] += v[i] * sign;
  }
  list(): unknown[][] {
    return [...this.rows.values()].filter((r) => r.v.some((x) => x !== 0)).map((r) => [...r.key, ...r.v]);
  }
}

/**
 * Call after the batch's sessions, files and facts are written: adds what the batch inserted to
 * the rollups, and moves every session whose cell changed (with all its credentials and commands).
 */
export async function writeReportRollups(db: DialectAdapter, tx: SqlRunner, base: RollupBase, facts: ReportFacts | undefined): Promise<void> {
  if (!base.ids.length) return;
  const after = await readSessionStates(tx, base.ids, false);
  const batchSuccesses = new Map<string, number>();
  for (const c of facts?.credentials ?? []) batchSuccesses.set(c.sessionId, (batchSuccesses.get(c.sessionId) ?? 0) + c.successes);
  const moved = base.ids.filter((id) => {
    const b = base.before.get(id);
    const a = after.get(id);
    return b && a && (b.day !== a.day || b.sensor !== a.sensor);
  });
  // A moved session takes everything it had: read its credentials and commands as they are now.
  const movedCreds: CredentialFact[] = [];
  const movedCmds: CommandFact[] = [];
  for (let k = 0; k < moved.length; k += CHUNK) {
    const chunk = moved.slice(k, k + CHUNK);
    for (const r of await tx.query<Record<string, unknown>>(
      `SELECT session_id, credential_hash, attempts, successes FROM session_credentials WHERE session_id IN (${marks(chunk.length)})`, chunk,
    )) movedCreds.push({ sessionId: String(r.session_id), hash: String(r.credential_hash), username: null, password: null, attempts: nz(r.attempts), successes: nz(r.successes) });
    for (const r of await tx.query<Record<string, unknown>>(
      `SELECT session_id, command_hash, executions FROM session_commands WHERE session_id IN (${marks(chunk.length)})`, chunk,
    )) movedCmds.push({ sessionId: String(r.session_id), hash: String(r.command_hash), command: null, executions: nz(r.executions) });
  }
  const movedSet = new Set(moved);
  const allSuccesses = new Map<string, number>();
  for (const c of movedCreds) allSuccesses.set(c.sessionId, (allSuccesses.get(c.sessionId) ?? 0) + c.successes);

  const daily = new Adder<DailySums>();
  const sums = (s: SessionRollupState, successes: number): DailySums =>
    [1, s.events, s.loginAttempts, s.loginAttempts > 0 ? 1 : 0, s.loginSuccess ? 1 : 0, successes, s.commands, s.downloads];
  for (const id of base.ids) {
    const a = after.get(id);
    const b = base.before.get(id);
    if (!a) continue;
    const mine = batchSuccesses.get(id) ?? 0;
    if (movedSet.has(id)) {
      const all = allSuccesses.get(id) ?? 0;
      if (b!.day !== null) daily.add([b!.day, b!.sensor], sums(b!, all - mine), -1);
      if (a.day !== null) daily.add([a.day, a.sensor], sums(a, all), 1);
    } else if (a.day !== null) {
      const now = sums(a, mine);
      if (b) {
        const was = sums(b, 0);
        daily.add([a.day, a.sensor], now.map((x, i) => x - was[i]) as DailySums, 1);
      } else daily.add([a.day, a.sensor], now, 1);
    }
  }

  const cell = (id: string, which: 'before' | 'after') => {
    const s = which === 'after' ? after.get(id) : base.before.get(id);
    return s && s.day !== null ? [s.day, s.sensor] : null;
  };
  const credDays = new Adder<[number, number]>();
  const cmdDays = new Adder<[number]>();
  // This batch's facts go to the session's cell as it is now…
  for (const c of facts?.credentials ?? []) {
    const at = cell(c.sessionId, 'after');
    if (at) credDays.add([c.hash, ...at], [c.attempts, c.successes], 1);
  }
  for (const c of facts?.commands ?? []) {
    const at = cell(c.sessionId, 'after');
    if (at) cmdDays.add([c.hash, ...at], [c.executions], 1);
  }
  // …and what a moved session had before this batch leaves its old cell for the new one.
  const mineOf = new Map<string, CredentialFact>();
  for (const c of facts?.credentials ?? []) if (movedSet.has(c.sessionId)) mineOf.set(`${c.sessionId}\u0001${c.hash}`, c);
  for (const c of movedCreds) {
    const m = mineOf.get(`${c.sessionId}\u0001${c.hash}`);
    const prior: [number, number] = [c.attempts - (m?.attempts ?? 0), c.successes - (m?.successes ?? 0)];
    const from = cell(c.sessionId, 'before');
    const to = cell(c.sessionId, 'after');
    if (from) credDays.add([c.hash, ...from], prior, -1);
    if (to) credDays.add([c.hash, ...to], prior, 1);
  }
  const mineCmd = new Map<string, CommandFact>();
  for (const c of facts?.commands ?? []) if (movedSet.has(c.sessionId)) mineCmd.set(`${c.sessionId}\u0001${c.hash}`, c);
  for (const c of movedCmds) {
    const prior: [number] = [c.executions - (mineCmd.get(`${c.sessionId}\u0001${c.hash}`)?.executions ?? 0)];
    const from = cell(c.sessionId, 'before');
    const to = cell(c.sessionId, 'after');
    if (from) cmdDays.add([c.hash, ...from], prior, -1);
    if (to) cmdDays.add([c.hash, ...to], prior, 1);
  }

  const plus = (table: string, cols: string[]) => cols.map((c) => `${c} = ${table}.${c} + excluded.${c}`).join(', ');
  const DAILY = ['sessions', 'events', 'login_attempts', 'sessions_with_logins', 'sessions_logged_in', 'successes', 'commands', 'downloads'];
  const dailyRows = daily.list();
  if (dailyRows.length) {
    await db.insertMany(tx, {
      table: 'report_daily', columns: [['day', 'text'], ['sensor', 'text'], ...DAILY.map((c): [string, string] => [c, 'integer'])],
      conflict: `ON CONFLICT (day, sensor) DO UPDATE SET ${plus('report_daily', DAILY)}`,
    }, dailyRows);
  }
  const credRows = credDays.list();
  if (credRows.length) {
    await db.insertMany(tx, {
      table: 'report_credential_days', columns: [['credential_hash', 'text'], ['day', 'text'], ['sensor', 'text'], ['attempts', 'integer'], ['successes', 'integer']],
      conflict: `ON CONFLICT (credential_hash, day, sensor) DO UPDATE SET ${plus('report_credential_days', ['attempts', 'successes'])}`,
    }, credRows);
  }
  const cmdRows = cmdDays.list();
  if (cmdRows.length) {
    await db.insertMany(tx, {
      table: 'report_command_days', columns: [['command_hash', 'text'], ['day', 'text'], ['sensor', 'text'], ['executions', 'integer']],
      conflict: `ON CONFLICT (command_hash, day, sensor) DO UPDATE SET ${plus('report_command_days', ['executions'])}`,
    }, cmdRows);
  }
  // All-time totals never move: only what this batch inserted.
  const credTotals = new Map<string, unknown[]>();
  for (const c of facts?.credentials ?? []) {
    const t = credTotals.get(c.hash);
    if (t) (t[3] as number) += c.attempts;
    else credTotals.set(c.hash, [c.hash, c.username, c.password, c.attempts]);
  }
  if (credTotals.size) {
    await db.insertMany(tx, {
      table: 'report_credential_totals', columns: [['credential_hash', 'text'], ['username', 'text'], ['password', 'text'], ['attempts', 'integer']],
      conflict: `ON CONFLICT (credential_hash) DO UPDATE SET ${plus('report_credential_totals', ['attempts'])}`,
    }, [...credTotals.values()]);
  }
  const cmdTotals = new Map<string, unknown[]>();
  for (const c of facts?.commands ?? []) {
    const t = cmdTotals.get(c.hash);
    if (t) (t[2] as number) += c.executions;
    else cmdTotals.set(c.hash, [c.hash, c.command, c.executions]);
  }
  if (cmdTotals.size) {
    await db.insertMany(tx, {
      table: 'report_command_totals', columns: [['command_hash', 'text'], ['command', 'text'], ['executions', 'integer']],
      conflict: `ON CONFLICT (command_hash) DO UPDATE SET ${plus('report_command_totals', ['executions'])}`,
    }, [...cmdTotals.values()]);
  }
}

/** `YYYY-MM-DD` of a session's first event, in SQL (ISO text on SQLite, UTC timestamptz text on PostgreSQL). */
const DAY_SQL = 'substr(CAST(s.first_event_at AS TEXT), 1, 10)';

/**
 * Migration 4, and any time the rollups must be rebuilt: recomputed from the session tables
 * (what the rollups are a sum of), so running it again gives the same rows.
 */
export async function backfillReportRollups(_db: DialectAdapter, tx: SqlRunner): Promise<void> {
  for (const t of ['report_daily', 'report_credential_days', 'report_command_days', 'report_credential_totals', 'report_command_totals']) await tx.run(`DELETE FROM ${t}`);
  await tx.run(`INSERT INTO report_daily (day, sensor, sessions, events, login_attempts, sessions_with_logins, sessions_logged_in, successes, commands, downloads)
    SELECT ${DAY_SQL}, coalesce(s.sensor, ''), count(*), sum(s.event_count), sum(s.login_attempts),
      sum(CASE WHEN s.login_attempts > 0 THEN 1 ELSE 0 END), sum(CASE WHEN s.login_success THEN 1 ELSE 0 END),
      sum(coalesce(c.successes, 0)), sum(s.command_count), sum(coalesce(f.n, 0))
    FROM session_summaries s
    LEFT JOIN (SELECT session_id, sum(successes) AS successes FROM session_credentials GROUP BY session_id) c ON c.session_id = s.session_id
    LEFT JOIN (SELECT session_id, count(*) AS n FROM files GROUP BY session_id) f ON f.session_id = s.session_id
    WHERE s.first_event_at IS NOT NULL GROUP BY 1, 2`);
  await tx.run(`INSERT INTO report_credential_days (credential_hash, day, sensor, attempts, successes)
    SELECT c.credential_hash, ${DAY_SQL}, coalesce(s.sensor, ''), sum(c.attempts), sum(c.successes)
    FROM session_credentials c JOIN session_summaries s ON s.session_id = c.session_id WHERE s.first_event_at IS NOT NULL GROUP BY 1, 2, 3`);
  await tx.run(`INSERT INTO report_command_days (command_hash, day, sensor, executions)
    SELECT c.command_hash, ${DAY_SQL}, coalesce(s.sensor, ''), sum(c.executions)
    FROM session_commands c JOIN session_summaries s ON s.session_id = c.session_id WHERE s.first_event_at IS NOT NULL GROUP BY 1, 2, 3`);
  await tx.run(`INSERT INTO report_credential_totals (credential_hash, username, password, attempts)
    SELECT credential_hash, min(username), min(password), sum(attempts) FROM session_credentials GROUP BY credential_hash`);
  await tx.run(`INSERT INTO report_command_totals (command_hash, command, executions)
    SELECT command_hash, min(command), sum(executions) FROM session_commands GROUP BY command_hash`);
}
