import type { FileDelta, IpDelta, SessionDelta, Summary } from '../store/ingest-repo.js';
import { ReportFactsBuilder } from '../store/report-facts-repo.js';

/**
 * What one event contributes to the summaries. Only events actually inserted are summarised,
 * so loading anything twice changes no count.
 */
export interface SummarisableEvent {
  sessionId: string | null;
  srcIp: string | null;
  sensor: string | null;
  eventType: string;
  /** Fixed-width ISO micros, so string order is time order. */
  eventTimestamp: string;
  /** The few parsed fields the summaries read (a ParsedEvent has them all). */
  parsed: SummaryFields;
}

export interface SummaryFields {
  loginSuccess: boolean;
  loginFailed: boolean;
  shasum: string | null;
  url: string | null;
  filename: string | null;
  version: string | null;
  hassh: string | null;
  protocol: string | null;
  durationSeconds: number | null;
  /** Read by the report facts (credentials, commands). */
  username: string | null;
  password: string | null;
  input: string | null;
}

const minStr = (a: string | null, b: string | null) => (a === null ? b : b === null ? a : a < b ? a : b);
const maxNum = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

/**
 * Per-session, per-file and per-IP deltas, built up event by event over a whole transaction.
 * Every merge is order-independent (sums, least/greatest), like the upserts that apply them.
 */
export class SummaryBuilder {
  readonly #sessions = new Map<string, SessionDelta>();
  readonly #files = new Map<string, FileDelta>();
  readonly #ips = new Map<string, { ip: string; firstSeen: string; lastSeen: string; sensors: Set<string> }>();
  readonly #facts = new ReportFactsBuilder();

  get size(): number {
    return this.#sessions.size + this.#files.size + this.#ips.size;
  }

  add(e: SummarisableEvent): void {
    this.#facts.add(e);
    const p = e.parsed;
    const ts = e.eventTimestamp;
    if (e.sessionId !== null) {
      let s = this.#sessions.get(e.sessionId);
      if (s === undefined) {
        s = {
          sessionId: e.sessionId, sensor: null, sourceIp: null, firstEventAt: ts, lastEventAt: ts, durationSeconds: null,
          eventCount: 0, loginAttempts: 0, loginSuccess: false, commandCount: 0,
          clientVersion: null, hassh: null, protocol: null,
        };
        this.#sessions.set(e.sessionId, s);
      }
      s.eventCount++;
      if (ts < s.firstEventAt) s.firstEventAt = ts;
      if (ts > s.lastEventAt) s.lastEventAt = ts;
      s.sensor = minStr(s.sensor, e.sensor);
      s.sourceIp = minStr(s.sourceIp, e.srcIp);
      if (p.loginSuccess || p.loginFailed) s.loginAttempts++;
      if (p.loginSuccess) s.loginSuccess = true;
      // `protocol` is on connect events (2.x) or derived from any event's `system` (1.x); a session has one.
      if (p.protocol !== null) s.protocol = minStr(s.protocol, p.protocol);
      switch (e.eventType) {
        case 'cowrie.command.input': s.commandCount++; break;
        case 'cowrie.client.version': s.clientVersion = minStr(s.clientVersion, p.version); break;
        case 'cowrie.client.kex': s.hassh = minStr(s.hassh, p.hassh); break;
        case 'cowrie.session.closed': s.durationSeconds = maxNum(s.durationSeconds, p.durationSeconds); break;
        default: break;
      }
      const downloaded = e.eventType === 'cowrie.session.file_download';
      if (p.shasum && (downloaded || e.eventType === 'cowrie.session.file_upload')) {
        const key = `${e.sessionId}\u0001${p.shasum}`;
        const f = this.#files.get(key);
        if (f === undefined) this.#files.set(key, { sessionId: e.sessionId, shasum: p.shasum, url: p.url, filename: p.filename, downloaded, firstSeen: ts, lastSeen: ts });
        else {
          f.downloaded ||= downloaded;
          f.url = minStr(f.url, p.url);
          f.filename = minStr(f.filename, p.filename);
          if (ts < f.firstSeen) f.firstSeen = ts;
          if (ts > f.lastSeen) f.lastSeen = ts;
        }
      }
    }
    if (e.srcIp !== null) {
      const ip = this.#ips.get(e.srcIp);
      if (ip === undefined) {
        this.#ips.set(e.srcIp, { ip: e.srcIp, firstSeen: ts, lastSeen: ts, sensors: new Set(e.sensor ? [e.sensor] : []) });
      } else {
        if (ts < ip.firstSeen) ip.firstSeen = ts;
        if (ts > ip.lastSeen) ip.lastSeen = ts;
        if (e.sensor) ip.sensors.add(e.sensor);
      }
    }
  }

  result(): Summary {
    const ips: IpDelta[] = [];
    for (const v of this.#ips.values()) ips.push({ ip: v.ip, firstSeen: v.firstSeen, lastSeen: v.lastSeen, sensors: [...v.sensors].sort() });
    return { sessions: [...this.#sessions.values()], files: [...this.#files.values()], ips, facts: this.#facts.result() };
  }
}

export function summarise(events: SummarisableEvent[]): Summary {
  const b = new SummaryBuilder();
  for (const e of events) b.add(e);
  return b.result();
}
