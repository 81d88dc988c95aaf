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
