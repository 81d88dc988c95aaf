/**
 * Faulty lines the log generator mixes in with --faults: each kind is something real logs
 * (or their copies) contain and the loader must survive — bad JSON, missing fields, NUL bytes,
 * invalid UTF-8, oversized fields, unknown event ids, IPv4-mapped IPv6 sources.
 */

export const FAULT_KINDS = [
  'invalid_json', 'json_array', 'no_eventid', 'no_timestamp', 'bad_timestamp', 'nul_escaped', 'nul_raw',
  'invalid_utf8', 'long_username', 'huge_command', 'unknown_eventid', 'mapped_ipv6',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultContext {
  /** Cowrie-style timestamp for the line. */
  timestamp: string;
  /** A public IPv4 address from the pool. */
  ipv4: string;
  sensor: string;
  session: string;
}

/** One faulty line (no newline); a Buffer when it must carry bytes that are not valid UTF-8 text. */
export function faultLine(kind: FaultKind, c: FaultContext): string | Buffer {
  const base = { sensor: c.sensor, timestamp: c.timestamp, src_ip: c.ipv4, session: c.session };
  const login = (username: string, shown = username) =>
    JSON.stringify({ eventid: 'cowrie.login.failed', username, password: 'admin', message: `login attempt [${shown}/admin] failed`, ...base });
  switch (kind) {
    case 'invalid_json':
      return `{"eventid":"cowrie.login.failed","username":"root","password":"123456","message":"login attempt [root/123456] failed","sensor":"${c.sensor}","timestamp":"${c.timestamp}`;
    case 'json_array':
      return JSON.stringify(['cowrie.session.connect', { src_ip: c.ipv4, session: c.session, timestamp: c.timestamp }]);
    case 'no_eventid':
      return JSON.stringify({ message: 'event without an eventid', ...base });
    case 'no_timestamp':
      return JSON.stringify({ eventid: 'cowrie.login.failed', username: 'root', password: 'root', message: 'login attempt [root/root] failed', sensor: c.sensor, src_ip: c.ipv4, session: c.session });
    case 'bad_timestamp':
      // 30 February does not exist.
      return JSON.stringify({ eventid: 'cowrie.login.failed', username: 'root', password: 'root', message: 'login attempt [root/root] failed', ...base, timestamp: '2024-02-30T12:00:00.000000Z' });
    case 'nul_escaped':
      return login('ro\u0000ot'); // JSON.stringify writes the \u0000 escape
    case 'nul_raw': {
      // A raw NUL byte inside the string (not valid JSON as such; copytruncate leaves them too).
      return login('adminNULMARK', 'admin').replace('NULMARK', '\u0000');
    }
    case 'invalid_utf8': {
      const [head, tail] = login('userBADMARK', 'user').split('BADMARK');
      return Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80]), Buffer.from(tail)]);
    }
    case 'long_username':
      return login(`root${'A'.repeat(996)}`);
    case 'huge_command': {
      const input = `echo ${'x'.repeat(100 * 1024)} > /tmp/.x`;
      return JSON.stringify({ eventid: 'cowrie.command.input', input, message: `CMD: ${input}`, ...base });
    }
    case 'unknown_eventid':
      return JSON.stringify({ eventid: 'cowrie.plugin.custom_event', detail: { nested: [1, 2, { deep: true }] }, message: 'an event type this tool has never seen', ...base });
    case 'mapped_ipv6':
      return JSON.stringify({
        eventid: 'cowrie.session.connect', src_ip: `::ffff:${c.ipv4}`, src_port: 40022, dst_ip: '192.168.100.166', dst_port: 2222, session: c.session,
        protocol: 'ssh', message: `New connection: ::ffff:${c.ipv4}:40022 (192.168.100.166:2222) [session: ${c.session}]`, sensor: c.sensor, timestamp: c.timestamp,
      });
  }
}
