import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isDeadLetter, normaliseIp, normaliseTimestamp, parseLine, tooLongDeadLetter, type DeadLetter, type ParsedEvent } from '../../src/ingest/parse.js';

const ctx = { source: '/logs/cowrie.json', offset: 42 };
const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

function event(line: string | Buffer, c: Parameters<typeof parseLine>[1] = ctx): ParsedEvent {
  const r = parseLine(line, c);
  if (isDeadLetter(r)) throw new Error(`unexpected dead letter ${r.reason}: ${r.detail}`);
  return r;
}
function dead(line: string | Buffer): DeadLetter {
  const r = parseLine(line, ctx);
  if (!isDeadLetter(r)) throw new Error('expected a dead letter');
  return r;
}

const CONNECT = '{"eventid":"cowrie.session.connect","src_ip":"192.168.100.253","src_port":55730,"dst_ip":"192.168.100.166","dst_port":2222,"session":"b000d7bfbc93","protocol":"ssh","message":"New connection: 192.168.100.253:55730 (192.168.100.166:2222) [session: b000d7bfbc93]","sensor":"red","timestamp":"2024-01-05T17:09:34.399033Z"}';
const line = (o: Record<string, unknown>) => JSON.stringify({ eventid: 'cowrie.login.failed', timestamp: '2024-01-05T17:09:34.399033Z', session: 'abc123abc123', src_ip: '1.2.3.4', sensor: 's1', ...o });

describe('parseLine: events', () => {
  it('parses a real connect line', () => {
    const e = event(CONNECT);
    expect(e).toMatchObject({
      kind: 'event', eventType: 'cowrie.session.connect', timestamp: '2024-01-05T17:09:34.399033Z', epochMs: Date.UTC(2024, 0, 5, 17, 9, 34, 399),
      sessionId: 'b000d7bfbc93', srcIp: '192.168.100.253', sensor: 'red', protocol: 'ssh', source: ctx.source, offset: 42,
      loginFailed: false, loginSuccess: false, durationSeconds: null,
    });
    expect(JSON.parse(e.payload)).toEqual(JSON.parse(CONNECT));
    expect(Object.keys(JSON.parse(e.payload))).toEqual(Object.keys(JSON.parse(CONNECT)).sort());
    expect(e.payloadHash).toBe(sha(e.payload));
  });

  it('accepts unknown event ids, array messages and extracts summary fields', () => {
    expect(event(line({ eventid: 'cowrie.plugin.brand_new', message: [] })).eventType).toBe('cowrie.plugin.brand_new');
    const ok = event(line({ eventid: 'cowrie.login.success', username: 'root', password: '' }));
    expect([ok.loginSuccess, ok.loginFailed, ok.username, ok.password]).toEqual([true, false, 'root', '']);
    expect(event(line({ username: 'admin', password: 'x' })).loginFailed).toBe(true);
    const dl = event(line({
      eventid: 'cowrie.session.file_download', url: 'http://1.2.3.4/bins.sh', destfile: '/tmp/bins.sh',
      outfile: `var/lib/cowrie/downloads/${'AB'.repeat(32)}`, shasum: 'AB'.repeat(32),
    }));
    expect([dl.url, dl.filename, dl.shasum]).toEqual(['http://1.2.3.4/bins.sh', 'bins.sh', 'ab'.repeat(32)]);
    expect(event(line({ eventid: 'cowrie.session.file_upload', filename: 'C:\\x\\evil.exe', outfile: 'var/x/y' })).filename).toBe('evil.exe');
    expect(event(line({ eventid: 'cowrie.session.file_download', outfile: 'var/lib/cowrie/downloads/abc' })).filename).toBe('abc');
    expect(event(line({ eventid: 'cowrie.client.version', version: 'SSH-2.0-Go' })).version).toBe('SSH-2.0-Go');
    expect(event(line({ eventid: 'cowrie.client.kex', hassh: 'ec7378c1a92f5a8dde7e8b7a1ddf33d1' })).hassh).toBe('ec7378c1a92f5a8dde7e8b7a1ddf33d1');
    expect(event(line({ eventid: 'cowrie.command.input', input: 'uname -a' })).input).toBe('uname -a');
  });

  it('ignores a byte-order mark before the JSON', () => {
    expect(event(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(CONNECT)])).eventType).toBe('cowrie.session.connect');
  });

  it('reads both duration forms as seconds', () => {
    expect(event(line({ eventid: 'cowrie.session.closed', duration: 51.115936279296875 })).durationSeconds).toBe(51.115936279296875);
    expect(event(line({ eventid: 'cowrie.session.closed', duration_ms: 51116 })).durationSeconds).toBe(51.116);
  });

  it('takes the sensor from the override, else the event; empty is null', () => {
    expect(event(line({ sensor: '' })).sensor).toBeNull();
    expect(event(line({ sensor: 'red' }), { ...ctx, sensorOverride: 'blue' }).sensor).toBe('blue');
    expect(event(line({ sensor: '' }), { ...ctx, sensorOverride: 'blue' }).sensor).toBe('blue');
    expect(event(line({ session: '' })).sessionId).toBeNull();
  });
});

describe('parseLine: dead letters', () => {
  const cases: Array<[string, string, string]> = [
    ['invalid_json', '{"eventid":"cowrie.login.failed","username":"ro', 'JSON'],
    ['not_an_object', '["cowrie.session.connect",1]', 'array'],
    ['not_an_object', '42', 'number'],
    ['missing_eventid', '{"timestamp":"2024-01-05T17:09:34.399033Z","message":"x"}', 'eventid'],
    ['missing_eventid', '{"eventid":7,"timestamp":"2024-01-05T17:09:34.399033Z"}', 'eventid'],
    ['missing_timestamp', '{"eventid":"cowrie.login.failed","username":"root"}', 'timestamp'],
    ['bad_timestamp', '{"eventid":"cowrie.login.failed","timestamp":"yesterday"}', 'yesterday'],
    ['bad_timestamp', '{"eventid":"cowrie.login.failed","timestamp":"2024-02-30T12:00:00.000000Z"}', '2024-02-30'],
    ['bad_timestamp', '{"eventid":"cowrie.login.failed","timestamp":1704474574}', '1704474574'],
  ];
  it.each(cases)('%s: %s', (reason, text, inDetail) => {
    const d = dead(Buffer.from(text));
    expect(d).toMatchObject({ kind: 'dead_letter', reason, rawLine: text, rawHash: sha(text), source: ctx.source, offset: 42 });
    expect(d.detail).toContain(inDetail);
    expect(d.detail).not.toMatch(/\n/);
  });

  it('hashes the raw bytes and cleans the text of invalid lines', () => {
    const raw = Buffer.concat([Buffer.from('{"eventid":"x","u":"a'), Buffer.from([0xff, 0x00]), Buffer.from('b", broken')]);
    const d = dead(raw);
    expect(d.reason).toBe('invalid_json');
    expect(d.rawHash).toBe(sha(raw));
    expect(d.rawLine).toBe('{"eventid":"x","u":"a\ufffdb", broken');
  });

  it('turns a too-long marker into a dead letter with the prefix', () => {
    const d = tooLongDeadLetter({ line: Buffer.from('{"eventid":'), offset: 9, end: 99, length: 89, tooLong: true }, 'f');
    expect(d).toMatchObject({ reason: 'line_too_long', rawLine: '{"eventid":', offset: 9, source: 'f' });
    expect(d.detail).toContain('89');
  });
});

describe('timestamps', () => {
  it.each([
    ['2024-01-05T17:09:34.399033Z', '2024-01-05T17:09:34.399033Z'],
    ['2024-01-05T19:09:34.399033+0200', '2024-01-05T17:09:34.399033Z'],
    ['2024-01-05T19:09:34.399033+02:00', '2024-01-05T17:09:34.399033Z'],
    ['2024-01-05T22:30:00.5-0500', '2024-01-06T03:30:00.5Z'],
    ['2024-01-05T17:09:34.399033+0000', '2024-01-05T17:09:34.399033Z'],
    ['2024-01-05T17:09:34Z', '2024-01-05T17:09:34Z'],
    ['2024-01-05 17:09:34.1', '2024-01-05T17:09:34.1Z'],
    ['2024-02-29T00:00:00.000001+0100', '2024-02-28T23:00:00.000001Z'],
  ])('%s → %s', (input, iso) => {
    const r = normaliseTimestamp(input)!;
    expect(r.iso).toBe(iso);
    expect(r.epochMs).toBe(Date.parse(iso));
    expect(event(line({ timestamp: input })).timestamp).toBe(iso);
  });

  it.each(['2023-02-29T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T24:00:00Z', '2024-01-01T10:00:00+2500', 'now', ''])('rejects %j', (s) => {
    expect(normaliseTimestamp(s)).toBeNull();
  });
});

describe('IP addresses', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:DB8::0:0:A', '2001:db8::a'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::FFFF:0102:0304', '1.2.3.4'],
    ['::1', '::1'],
    ['fe80::1%eth0', 'fe80::1'],
  ])('%s → %s', (raw, canonical) => {
    expect(normaliseIp(raw)).toBe(canonical);
    expect(event(line({ src_ip: raw })).srcIp).toBe(canonical);
  });

  it.each(['not-an-ip', '01.2.3.4', '256.1.1.1', '1.2.3', '2001:db8:::1', 42])('keeps the event with src_ip null for %j', (raw) => {
    const e = event(line({ src_ip: raw }));
    expect(e.srcIp).toBeNull();
    expect(JSON.parse(e.payload).src_ip).toBe(raw);
  });
});

describe('text cleaning', () => {
  it('removes escaped NUL from values and keys, and raw NUL bytes', () => {
    const escaped = event('{"eventid":"cowrie.login.failed","timestamp":"2024-01-05T17:09:34Z","username":"ro\\u0000ot","k\\u0000":["a\\u0000"]}');
    expect(escaped.username).toBe('root');
    expect(escaped.payload).not.toContain('\\u0000');
    expect(JSON.parse(escaped.payload)).toMatchObject({ k: ['a'] });
    const raw = event(Buffer.from('{"eventid":"cowrie.login.failed","timestamp":"2024-01-05T17:09:34Z","username":"ad\u0000min"}'));
    expect(raw.username).toBe('admin');
  });

  it('replaces lone surrogates and invalid UTF-8 with U+FFFD', () => {
    expect(event(line({ password: '\ud800x' })).password).toBe('\ufffdx');
    const bytes = Buffer.concat([Buffer.from(line({ username: 'userMARK' }).split('MARK')[0]), Buffer.from([0xff, 0xfe]), Buffer.from(line({ username: 'userMARK' }).split('MARK')[1])]);
    const e = event(bytes);
    expect(e.username).toBe('user\ufffd\ufffd');
    expect(Buffer.from(e.payload).includes(Buffer.from([0xff]))).toBe(false);
  });

  it('keeps long fields whole', () => {
    const user = `root${'A'.repeat(996)}`;
    const cmd = `echo ${'x'.repeat(100 * 1024)}`;
    expect(event(line({ username: user })).username).toBe(user);
    const c = event(line({ eventid: 'cowrie.command.input', input: cmd }));
    expect(c.input).toBe(cmd);
    expect(JSON.parse(c.payload).input).toBe(cmd);
  });
});

describe('identity hash', () => {
  const a = '{"eventid":"cowrie.client.kex","hassh":"h","kexAlgs":["x","y"],"nested":{"b":1,"a":2},"timestamp":"2024-01-05T17:09:34.399033Z","session":"s"}';
  const b = '{"session":"s","timestamp":"2024-01-05T17:09:34.399033Z","nested":{"a":2,"b":1},"kexAlgs":["x","y"],"hassh":"h","eventid":"cowrie.client.kex"}';

  it('is stable under key reordering at every level', () => {
    expect(event(a).payloadHash).toBe(event(b).payloadHash);
    expect(event(a).payload).toBe(event(b).payload);
  });

  it('is the same for the same event read from different files, offsets or sensor overrides', () => {
    const one = event(a, { source: '/logs/cowrie.json.1', offset: 0 });
    const two = event(a, { source: '/logs/cowrie.json.2.gz', offset: 12345, sensorOverride: 'x' });
    expect(one.payloadHash).toBe(two.payloadHash);
  });

  it('differs when content differs (array order matters, the timestamp matters)', () => {
    const base = event(a).payloadHash;
    expect(event(a.replace('["x","y"]', '["y","x"]')).payloadHash).not.toBe(base);
    expect(event(a.replace('34.399033', '34.399034')).payloadHash).not.toBe(base);
  });
});

describe('cleaning is recorded (issue 8 item 2)', () => {
  it('names the cleaned fields in the payload: escaped NUL, raw NUL in a string, lone surrogates, nested values', () => {
    const telnet = event(line({ username: 'enable\u0000', message: 'login attempt [enable\u0000/x] failed' }));
    expect(telnet.username).toBe('enable');
    expect(telnet.cleaned).toEqual(['message', 'username']);
    expect(JSON.parse(telnet.payload)._cleaned).toEqual(['message', 'username']);
    const raw = event(Buffer.from('{"eventid":"cowrie.login.failed","timestamp":"2024-01-05T17:09:34Z","username":"ad\u0000min","password":"x"}'));
    expect([raw.username, raw.cleaned]).toEqual(['admin', ['username']]);
    expect(event(line({ password: '\ud800x' })).cleaned).toEqual(['password']);
    expect(event(line({ eventid: 'cowrie.client.kex', kexAlgs: ['a', 'b\u0000'] })).cleaned).toEqual(['kexAlgs']);
    // A clean line has no marker, and its payload is byte-for-byte what it was before.
    const plain = event(CONNECT);
    expect(plain.cleaned).toEqual([]);
    expect(plain.payload).not.toContain('_cleaned');
  });

  it('the same text with and without the NUL is two different events', () => {
    expect(event(line({ username: 'enable\u0000' })).payloadHash).not.toBe(event(line({ username: 'enable' })).payloadHash);
  });

  it('a raw NUL outside any string is dropped and recorded as "*"; copytruncate padding before the line is not recorded', () => {
    const outside = event(Buffer.from('{"eventid":"cowrie.login.failed",\u0000"timestamp":"2024-01-05T17:09:34Z"}'));
    expect(outside.cleaned).toEqual(['*']);
    const padded = event(Buffer.concat([Buffer.alloc(64), Buffer.from(CONNECT)]));
    expect(padded.cleaned).toEqual([]);
    expect(padded.payloadHash).toBe(event(CONNECT).payloadHash);
  });
});

describe('old Cowrie fields (issue 8 items 3 and 5)', () => {
  const SHA = 'ab'.repeat(32);
  it('takes a download\'s file name from the URL\'s last path segment, then destfile, then outfile', () => {
    const dl = (o: Record<string, unknown>) => event(line({ eventid: 'cowrie.session.file_download', shasum: SHA, outfile: `var/lib/cowrie/downloads/${SHA}`, ...o })).filename;
    expect(dl({ url: 'http://198.51.100.9/bins/mirai.arm7?x=1#y' })).toBe('mirai.arm7');
    expect(dl({ url: '198.51.100.9:8080/x86' })).toBe('x86');
    expect(dl({ url: 'http://198.51.100.9/', destfile: '/tmp/.x/run.sh' })).toBe('run.sh');
    expect(dl({ url: 'http://198.51.100.9' })).toBe(SHA);
    expect(dl({})).toBe(SHA);
    expect(event(line({ eventid: 'cowrie.session.file_upload', filename: '/root/up.sh', shasum: SHA })).filename).toBe('up.sh');
  });

  it("unwraps Cowrie 2.0's b'…' client version", () => {
    expect(event(line({ eventid: 'cowrie.client.version', version: "b'SSH-2.0-Go'" })).version).toBe('SSH-2.0-Go');
    expect(event(line({ eventid: 'cowrie.client.version', version: 'b"SSH-2.0-libssh_0.9.6"' })).version).toBe('SSH-2.0-libssh_0.9.6');
    expect(event(line({ eventid: 'cowrie.client.version', version: 'bash' })).version).toBe('bash');
  });

  it('derives the protocol from system when the event has none', () => {
    const p = (o: Record<string, unknown>) => event(line({ eventid: 'cowrie.session.connect', ...o })).protocol;
    expect(p({ system: 'HoneyPotSSHTransport,523,116.31.116.16' })).toBe('ssh');
    expect(p({ system: 'cowrie.ssh.factory.CowrieSSHFactory' })).toBe('ssh');
    expect(p({ system: 'cowrie.telnet.transport.HoneyPotTelnetFactory' })).toBe('telnet');
    expect(p({ system: 'CowrieTelnetTransport,12,198.51.100.3' })).toBe('telnet');
    expect(p({ system: 'HoneyPotSSHTransport,1,1.2.3.4', protocol: 'telnet' })).toBe('telnet');
    expect(p({ system: '-' })).toBeNull();
  });
});

describe('hostile lines are dead letters, never errors (issue 8 items 21, 22, 28)', () => {
  const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
  it.each([
    ['too_deep', `{"eventid":"x","timestamp":"2024-01-05T17:09:34Z","d":${deep(3000)}}`],
    ['too_deep', `{"eventid":"x","timestamp":"2024-01-05T17:09:34Z","d":${deep(200_000)}}`],
    ['too_many_values', line({ k: Array.from({ length: 60_000 }, (_, i) => i) })],
    ['number_out_of_range', '{"eventid":"x","timestamp":"2024-01-05T17:09:34Z","src_port":1e400}'],
    ['bad_session_id', line({ session: 'x'.repeat(3000) })],
    ['bad_session_id', line({ session: 'abc def' })],
    ['bad_session_id', line({ session: 12 })],
    ['bad_shasum', line({ eventid: 'cowrie.session.file_download', shasum: 'f'.repeat(3000) })],
    ['bad_shasum', line({ eventid: 'cowrie.session.file_download', shasum: { a: 1 } })],
    ['bad_eventid', line({ eventid: 'cowrie.\u001b[2J' })],
    ['bad_eventid', line({ eventid: 'e'.repeat(129) })],
  ])('%s', (reason, text) => {
    const d = dead(text);
    expect(d.reason).toBe(reason);
    expect(d.detail.length).toBeLessThanOrEqual(200);
  });

  it('accepts session ids in the formats real tools write', () => {
    for (const s of ['b000d7bfbc93', 'a'.repeat(32), '0b6e0d9c-4a2b-4f3e-9d8a-2b8e7c1f0a11']) expect(event(line({ session: s })).sessionId).toBe(s);
    expect(event(line({ session: null })).sessionId).toBeNull();
  });

  it('keeps a __proto__ key as an ordinary key: two different lines stay two events', () => {
    const a = event('{"eventid":"x","timestamp":"2024-01-05T17:09:34Z","__proto__":{"timestamp":"1999"},"u":"a"}');
    const b = event('{"eventid":"x","timestamp":"2024-01-05T17:09:34Z","u":"a"}');
    expect(a.payloadHash).not.toBe(b.payloadHash);
    expect(a.payload).toBe('{"__proto__":{"timestamp":"1999"},"eventid":"x","timestamp":"2024-01-05T17:09:34Z","u":"a"}');
    // Also when the line is cleaned, and nested: the key is never turned into a prototype.
    const c = event('{"eventid":"x","timestamp":"2024-01-05T17:09:34Z","o":{"__proto__":{"session":"q"}},"u":"a\\u0000"}');
    expect(JSON.parse(c.payload).o).toEqual(JSON.parse('{"__proto__":{"session":"q"}}'));
    expect(c.sessionId).toBeNull();
  });

  it('a __proto__ key cannot supply the eventid or timestamp', () => {
    expect(dead('{"__proto__":{"eventid":"x","timestamp":"2024-01-05T17:09:34Z"},"u":"\\u0000"}').reason).toBe('missing_eventid');
  });
});
