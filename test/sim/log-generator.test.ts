import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { registerLogsCommand, runLogsCommand } from '../../src/cli/sim/logs.js';
import { UsageError } from '../../src/errors.js';
import { isDeadLetter, parseLine, type ParsedEvent } from '../../src/ingest/parse.js';
import { detectCompression, findLogFiles, readLines } from '../../src/ingest/reader.js';
import { generateLogs, type GenerateLogsOptions } from '../../src/sim/log-generator.js';

const root = mkdtempSync(join(tmpdir(), 'cowrie-loggen-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const out = () => join(root, `run${n++}`);

const digest = (paths: string[], dir: string) =>
  Object.fromEntries(paths.map((p) => [relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex')]));

interface Loaded {
  events: Array<ParsedEvent & { file: string }>;
  dead: Record<string, number>;
  lines: number;
  rawText: string;
}

async function load(dir: string): Promise<Loaded> {
  const { files } = await findLogFiles([dir]);
  const r: Loaded = { events: [], dead: {}, lines: 0, rawText: '' };
  for (const f of files) {
    for await (const rec of readLines(f)) {
      r.lines++;
      const p = parseLine(rec.line, { source: f, offset: rec.offset });
      if (isDeadLetter(p)) r.dead[p.reason] = (r.dead[p.reason] ?? 0) + 1;
      else r.events.push({ ...p, file: f });
    }
  }
  return r;
}

const BASE: Omit<GenerateLogsOptions, 'outDir'> = { sessions: 1500, ips: 300, sensors: 3, days: 3, seed: 11 };

describe('generateLogs', () => {
  it('writes the same bytes twice for a seed (gzip included) and different bytes for another seed', async () => {
    const [a, b, c] = [out(), out(), out()];
    const sa = await generateLogs({ ...BASE, outDir: a, gzip: true, faults: true });
    const sb = await generateLogs({ ...BASE, outDir: b, gzip: true, faults: true });
    const sc = await generateLogs({ ...BASE, outDir: c, gzip: true, faults: true, seed: 12 });
    expect(digest(sa.paths, a)).toEqual(digest(sb.paths, b));
    expect(Object.keys(digest(sc.paths, c))).toEqual(Object.keys(digest(sa.paths, a)));
    const da = digest(sa.paths, a), dc = digest(sc.paths, c);
    for (const k of Object.keys(da)) expect(dc[k]).not.toBe(da[k]);
  });

  it('lays out one file per sensor per day, the last day plain cowrie.json, rotated files gzipped', async () => {
    const dir = out();
    const s = await generateLogs({ ...BASE, outDir: dir, gzip: true, startDate: '2025-03-30' });
    expect(s.files).toBe(9);
    expect(s.paths.map((p) => relative(dir, p))).toEqual([
      'dshield-01/cowrie.json', 'dshield-01/cowrie.json.2025-03-30.gz', 'dshield-01/cowrie.json.2025-03-31.gz',
      'honeypot-01/cowrie.json', 'honeypot-01/cowrie.json.2025-03-30.gz', 'honeypot-01/cowrie.json.2025-03-31.gz',
      'honeypot-02/cowrie.json', 'honeypot-02/cowrie.json.2025-03-30.gz', 'honeypot-02/cowrie.json.2025-03-31.gz',
    ]);
    for (const p of s.paths) expect(await detectCompression(p)).toBe(basename(p) === 'cowrie.json' ? 'none' : 'gzip');
  });

  it('matches its summary, spreads sessions heavy-tailed over IPs and mixes formats', async () => {
    const dir = out();
    const s = await generateLogs({ ...BASE, outDir: dir });
    const { events, dead, lines } = await load(dir);
    expect(dead).toEqual({});
    expect(lines).toBe(s.events);
    expect(events).toHaveLength(s.events);
    expect(s.faultLines).toBe(0);
    const sessions = new Map<string, ParsedEvent[]>();
    for (const e of events) sessions.set(e.sessionId!, [...(sessions.get(e.sessionId!) ?? []), e]);
    expect(sessions.size).toBe(s.sessions);
    expect(new Set(events.map((e) => e.srcIp)).size).toBe(s.uniqueIps);
    expect(s.uniqueIps).toBe(300); // sessions > ips: every pool IP is used

    // Every session opens with connect and ends with closed.
    for (const evs of sessions.values()) {
      const sorted = [...evs].sort((x, y) => x.epochMs - y.epochMs);
      expect(sorted[0].eventType).toBe('cowrie.session.connect');
      expect(sorted[sorted.length - 1].eventType).toBe('cowrie.session.closed');
    }

    const perIp = new Map<string, number>();
    for (const e of events) if (e.eventType === 'cowrie.session.connect') perIp.set(e.srcIp!, (perIp.get(e.srcIp!) ?? 0) + 1);
    const counts = [...perIp.values()].sort((x, y) => y - x);
    const median = counts[Math.floor(counts.length / 2)];
    expect(counts[0]).toBeGreaterThanOrEqual(20 * median);
    expect(counts.filter((c) => c === 1).length).toBeGreaterThan(counts.length * 0.3);
    const v6 = [...perIp.keys()].filter((ip) => ip.includes(':')).length;
    expect(v6).toBeGreaterThan(0);
    expect(v6).toBeLessThan(perIp.size * 0.12);
    for (const ip of perIp.keys()) {
      if (ip.includes(':')) continue;
      const [a, b] = ip.split('.').map(Number);
      expect(a === 10 || a === 127 || (a === 192 && b === 168) || (a === 172 && b >= 16 && b < 32)).toBe(false);
    }

    const ids = [...sessions.keys()];
    expect(ids.every((id) => /^[0-9a-f]{12}$|^[0-9a-f]{32}$/.test(id))).toBe(true);
    expect(ids.some((id) => id.length === 32)).toBe(true);
    const payloads = events.map((e) => JSON.parse(e.payload));
    const closed = payloads.filter((p) => p.eventid === 'cowrie.session.closed');
    expect(closed.some((p) => typeof p.duration === 'number')).toBe(true);
    expect(closed.some((p) => Number.isInteger(p.duration_ms))).toBe(true);
    expect(payloads.some((p) => typeof p.uuid === 'string')).toBe(true);
    expect(payloads.some((p) => p.uuid === undefined)).toBe(true);
    expect(payloads.some((p) => /[+-]\d{4}$/.test(p.timestamp))).toBe(true);
    expect(payloads.filter((p) => p.timestamp.endsWith('Z')).length).toBeGreaterThan(payloads.length * 0.9);
    expect(payloads.filter((p) => p.sensor === '').length).toBeGreaterThan(0);
    expect(events.filter((e) => e.file.includes('dshield-01')).every((e) => e.sensor === null)).toBe(true);
    for (const t of ['cowrie.client.version', 'cowrie.client.kex', 'cowrie.login.failed', 'cowrie.login.success', 'cowrie.command.input', 'cowrie.session.file_download']) {
      expect(events.some((e) => e.eventType === t)).toBe(true);
    }
    const dl = events.find((e) => e.eventType === 'cowrie.session.file_download')!;
    expect(dl.shasum).toMatch(/^[0-9a-f]{64}$/);
    expect(dl.url).toMatch(/^http:\/\//);

    // Sessions cross midnight: one session's events in two daily files.
    const crossing = [...sessions.values()].filter((evs) => new Set(evs.map((e) => (e as ParsedEvent & { file: string }).file)).size > 1);
    expect(crossing.length).toBeGreaterThanOrEqual(2);
  });

  it('mixes in every kind of fault with --faults, counted apart from session events', async () => {
    const dir = out();
    const s = await generateLogs({ ...BASE, days: 2, outDir: dir, faults: true });
    const clean = await generateLogs({ ...BASE, days: 2, outDir: out() });
    expect(s.events).toBe(clean.events);
    expect(s.faultLines).toBe(24);
    const { events, dead, lines } = await load(dir);
    expect(lines).toBe(s.events + s.faultLines);
    expect(dead).toEqual({ invalid_json: 2, not_an_object: 2, missing_eventid: 2, missing_timestamp: 2, bad_timestamp: 2 });
    // Fault lines carry their own session ids, without a connect event (except the mapped-IPv6 connect).
    const connected = new Set(events.filter((e) => e.eventType === 'cowrie.session.connect').map((e) => e.sessionId));
    const faultEvents = events.filter((e) => !connected.has(e.sessionId) || JSON.parse(e.payload).src_ip.startsWith('::ffff:'));
    expect(faultEvents).toHaveLength(s.faultLines - 10);
    const users = faultEvents.map((e) => e.username ?? '').sort();
    const long = `root${'A'.repeat(996)}`;
    // NUL escaped (ro\u0000ot) and raw (ad\0min) are removed; invalid UTF-8 becomes U+FFFD.
    expect(users.filter((u) => u !== '')).toEqual(['admin', 'admin', 'root', 'root', long, long, 'user\ufffd\ufffd\ufffd(\ufffd', 'user\ufffd\ufffd\ufffd(\ufffd']);
    expect(faultEvents.filter((e) => (e.input ?? '').length > 100 * 1024)).toHaveLength(2);
    expect(faultEvents.filter((e) => e.eventType === 'cowrie.plugin.custom_event')).toHaveLength(2);
    const mapped = faultEvents.filter((e) => JSON.parse(e.payload).src_ip.startsWith('::ffff:'));
    expect(mapped).toHaveLength(2);
    expect(mapped.every((e) => /^\d+\.\d+\.\d+\.\d+$/.test(e.srcIp!) && e.payload.includes(`::ffff:${e.srcIp}`))).toBe(true);
    const raw = readFileSync(join(dir, 'honeypot-01', 'cowrie.json'));
    expect(raw.includes(Buffer.from([0x00]))).toBe(true);
    expect(raw.includes(Buffer.from([0xff, 0xfe]))).toBe(true);
    expect(raw.includes(Buffer.from('ro\\u0000ot'))).toBe(true);
  });
});

describe('cowrie-sim logs', () => {
  it('prints the summary on one line', async () => {
    const dir = out();
    const printed: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((m: string) => { printed.push(m); });
    try {
      const program = new Command().exitOverride();
      registerLogsCommand(program);
      await program.parseAsync(['logs', '--out', dir, '--sessions', '40', '--ips', '10', '--sensors', '1', '--days', '2', '--seed', '3', '--gzip', '--faults'], { from: 'user' });
    } finally {
      spy.mockRestore();
    }
    expect(printed).toHaveLength(1);
    const summary = JSON.parse(printed[0]);
    expect(summary).toMatchObject({ out: dir, files: 2, sessions: 40, faultLines: 24 });
    expect(summary.events).toBeGreaterThan(40 * 3);
    expect(summary.uniqueIps).toBe(10);
  });

  it('rejects bad numbers as usage errors', async () => {
    const opts = { out: out(), sessions: '10', ips: '5', sensors: '1', days: '1', seed: '1' };
    await expect(runLogsCommand({ ...opts, sessions: 'lots' }, () => {})).rejects.toBeInstanceOf(UsageError);
    await expect(runLogsCommand({ ...opts, ips: '0' }, () => {})).rejects.toThrow(/--ips/);
    await expect(runLogsCommand({ ...opts, startDate: 'tomorrow' }, () => {})).rejects.toThrow(/--start-date/);
    await expect(runLogsCommand({ ...opts, startDate: '2024-02-31' }, () => {})).rejects.toBeInstanceOf(UsageError);
  });
});
