import type { FileDelta, IpDelta, SessionDelta, Summary } from '../store/ingest-repo.js';
import type { ParsedEvent } from './parse.js';

/** What one event contributes, keyed as the store needs it. Only events actually inserted are summarised. */
export interface SummarisableEvent {
  sessionId: string | null;
  srcIp: string | null;
  sensor: string | null;
  eventType: string;
  /** Fixed-width ISO micros, so string order is time order. */
  eventTimestamp: string;
  parsed: ParsedEvent;
}

const minStr = (a: string | null, b: string | null) => (a === null ? b : b === null ? a : a < b ? a : b);
const maxNum = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

export function summarise(events: SummarisableEvent[]): Summary {
  const sessions = new Map<string, SessionDelta>();
  const files = new Map<string, FileDelta>();
  const ips = new Map<string, IpDelta & { sensorSet: Set<string> }>();
  for (const e of events) {
    const p = e.parsed;
    const ts = e.eventTimestamp;
    if (e.sessionId) {
      let s = sessions.get(e.sessionId);
      if (!s) {
        s = {
          sessionId: e.sessionId, sensor: null, sourceIp: null, firstEventAt: ts, lastEventAt: ts, durationSeconds: null,
          eventCount: 0, loginAttempts: 0, loginSuccess: false, commandCount: 0, fileDownloads: 0,
          clientVersion: null, hassh: null, protocol: null,
        };
        sessions.set(e.sessionId, s);
      }
      s.eventCount++;
      if (ts < s.firstEventAt) s.firstEventAt = ts;
      if (ts > s.lastEventAt) s.lastEventAt = ts;
      s.sensor = minStr(s.sensor, e.sensor);
      s.sourceIp = minStr(s.sourceIp, e.srcIp);
      if (p.loginSuccess || p.loginFailed) s.loginAttempts++;
      if (p.loginSuccess) s.loginSuccess = true;
      switch (e.eventType) {
        case 'cowrie.command.input': s.commandCount++; break;
        case 'cowrie.session.file_download': if (p.shasum) s.fileDownloads++; break;
        case 'cowrie.client.version': s.clientVersion = minStr(s.clientVersion, p.version); break;
        case 'cowrie.client.kex': s.hassh = minStr(s.hassh, p.hassh); break;
        case 'cowrie.session.connect': s.protocol = minStr(s.protocol, p.protocol); break;
        case 'cowrie.session.closed': s.durationSeconds = maxNum(s.durationSeconds, p.durationSeconds); break;
        default: break;
      }
      if (p.shasum && (e.eventType === 'cowrie.session.file_download' || e.eventType === 'cowrie.session.file_upload')) {
        const key = `${e.sessionId}\u0001${p.shasum}`;
        const f = files.get(key);
        if (!f) files.set(key, { sessionId: e.sessionId, shasum: p.shasum, url: p.url, filename: p.filename, firstSeen: ts, lastSeen: ts });
        else {
          f.url = minStr(f.url, p.url);
          f.filename = minStr(f.filename, p.filename);
          if (ts < f.firstSeen) f.firstSeen = ts;
          if (ts > f.lastSeen) f.lastSeen = ts;
        }
      }
    }
    if (e.srcIp) {
      let ip = ips.get(e.srcIp);
      if (!ip) {
        ip = { ip: e.srcIp, firstSeen: ts, lastSeen: ts, sensors: [], sensorSet: new Set() };
        ips.set(e.srcIp, ip);
      }
      if (ts < ip.firstSeen) ip.firstSeen = ts;
      if (ts > ip.lastSeen) ip.lastSeen = ts;
      if (e.sensor) ip.sensorSet.add(e.sensor);
    }
  }
  return {
    sessions: [...sessions.values()],
    files: [...files.values()],
    ips: [...ips.values()].map(({ sensorSet, ...rest }) => ({ ...rest, sensors: [...sensorSet] })),
  };
}
