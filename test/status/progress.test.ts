import { afterEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { StatusEmitter } from '../../src/status/emitter.js';
import { createProgress, formatDuration, progressIntervalMs, progressMode, refreshStatusToProgress } from '../../src/status/progress.js';

/** A stream that records what is written; `tty` says whether it claims to be a terminal. */
function fakeStream(tty: boolean) {
  const writes: string[] = [];
  return { writes, isTTY: tty, columns: 160, write: (t: string) => writes.push(t) };
}

// Leftovers of template-based bars: raw placeholders, NaN/Infinity ETAs.
const BROKEN = /\{[a-z_]+\}|NaN|Infinity|ETA NF|ETA LL|undefined/;

afterEach(() => {
  vi.useRealTimers();
});

describe('terminal progress bar', () => {
  it('draws real figures from the first frame, every step, a rate-based ETA, and clears itself', () => {
    let now = 1_000_000;
    const s = fakeStream(true);
    const p = createProgress({ label: 'refresh', mode: 'bar', stream: s, now: () => now });
    expect(s.writes[0]).toBe('\rrefresh: starting…\x1b[K');
    p.update('sessions', 0, 300, 'sessions');
    expect(s.writes.at(-1)).toMatch(/^\rrefresh sessions \[-{20}\]   0% 0\/300 sessions \| 0 s, ETA --\x1b\[K$/);
    now += 10_000;
    p.update('sessions', 150, 300, 'sessions');
    expect(s.writes.at(-1)).toMatch(/\[#{10}-{10}\]  50% 150\/300 sessions \| 10 s, ETA 10 s/);
    // A new step is drawn at once and has its own clock and rate.
    now += 50;
    p.update('pass 2/3 Cymru', 0, 4000, 'IPs');
    expect(s.writes.at(-1)).toMatch(/refresh pass 2\/3 Cymru \[-{20}\]   0% 0\/4,000 IPs \| 0 s, ETA --/);
    now += 120_000;
    p.update('pass 2/3 Cymru', 1000, 4000, 'IPs');
    expect(s.writes.at(-1)).toMatch(/1,000\/4,000 IPs \| 2 min 00 s, ETA 6 min 00 s/);
    p.writeLine('[ERROR] Cymru batch 2/8 failed');
    expect(s.writes.slice(-2)).toEqual(['\r\x1b[K[ERROR] Cymru batch 2/8 failed\n', expect.stringMatching(/^\rrefresh pass 2\/3 Cymru/)]);
    p.stop();
    expect(s.writes.at(-1)).toBe('\r\x1b[K');
    for (const w of s.writes) expect(w).not.toMatch(BROKEN);
  });

  it('shows bytes as MB for the loader and fits the terminal width', () => {
    const s = { ...fakeStream(true), columns: 60 };
    const p = createProgress({ label: 'ingest', mode: 'bar', stream: s, now: () => 0 });
    p.update('files', 12_500_000, 50_000_000, 'bytes', 'file 3/10, 1,234 events, 5,000 events/s');
    const frame = s.writes.at(-1)!;
    expect(frame).toMatch(/^\ringest files \[#####-+\]  25% 12\.5\/50\.0 MB/);
    expect(frame.replace(/^\r/, '').replace(/\x1b\[K$/, '').length).toBeLessThanOrEqual(59);
    p.stop();
  });

  it('redraws on its own every second, so a slow step is visibly alive', () => {
    vi.useFakeTimers();
    const s = fakeStream(true);
    const p = createProgress({ label: 'refresh', mode: 'bar', stream: s });
    p.update('files (VirusTotal)', 0, 10, 'files');
    const before = s.writes.length;
    vi.advanceTimersByTime(3_000);
    expect(s.writes.length).toBeGreaterThanOrEqual(before + 3);
    expect(s.writes.at(-1)).toMatch(/files \(VirusTotal\).* 3 s, ETA --/);
    p.stop();
  });
});

describe('progress without a terminal', () => {
  it('logs one plain [INFO] progress line per interval, without control characters', () => {
    vi.useFakeTimers();
    const s = fakeStream(false);
    const p = createProgress({ label: 'refresh', mode: 'lines', stream: s, intervalMs: 10_000 });
    vi.advanceTimersByTime(9_999);
    expect(s.writes).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(s.writes).toEqual(['[INFO] progress: refresh starting\n']);
    p.update('pass 3/3 merge + GreyNoise', 120, 500, 'IPs');
    vi.advanceTimersByTime(10_000);
    expect(s.writes.at(-1)).toMatch(/^\[INFO\] progress: refresh pass 3\/3 merge \+ GreyNoise 120\/500 IPs \(24%\), 10 s, ETA 32 s\n$/);
    // Still alive while the counts stand still (a slow source): a line every interval.
    vi.advanceTimersByTime(20_000);
    expect(s.writes).toHaveLength(4);
    p.stop();
    vi.advanceTimersByTime(60_000);
    expect(s.writes).toHaveLength(4);
    for (const w of s.writes) expect(w.slice(0, -1)).not.toMatch(/[\x00-\x1f]/);
  });

  it('picks the display: bar on a terminal, lines otherwise, nothing with --verbose or --quiet', () => {
    expect(progressMode({}, { isTTY: true, write() {} })).toBe('bar');
    expect(progressMode({}, { isTTY: false, write() {} })).toBe('lines');
    expect(progressMode({ verbose: true }, { isTTY: true, write() {} })).toBe('off');
    expect(progressMode({ quiet: true }, { isTTY: false, write() {} })).toBe('off');
  });

  it('takes its interval from COWRIE_PROGRESS_INTERVAL (seconds) and refuses nonsense', () => {
    expect(progressIntervalMs({})).toBe(10_000);
    expect(progressIntervalMs({ COWRIE_PROGRESS_INTERVAL: '0.25' })).toBe(250);
    for (const bad of ['0', '-1', 'soon', '1e9']) expect(() => progressIntervalMs({ COWRIE_PROGRESS_INTERVAL: bad })).toThrow(UsageError);
  });

  it('formats durations for people', () => {
    expect([formatDuration(0), formatDuration(59.6), formatDuration(65), formatDuration(7_260)]).toEqual(['0 s', '1 min 00 s', '1 min 05 s', '2 h 01 min']);
  });
});

describe('refresh steps reach the display through the status emitter', () => {
  it('every step the refresh reports (sessions, files, passes 1–3) becomes a progress step', () => {
    const seen: string[] = [];
    const progress = { update: (step: string, done: number, total: number, unit: string) => seen.push(`${step} ${done}/${total} ${unit}`), writeLine() {}, stop() {} };
    const status = new StatusEmitter({ onUpdate: refreshStatusToProgress(progress) });
    status.update('sessions', { sessions_processed: 100, sessions_total: 300 });
    status.update('files', { files_processed: 2, files_total: 5, file_errors: 0 });
    status.update('pass_1_maxmind', { ips_processed: 50, ips_total: 50, ip_errors: 0, need_cymru: 9 });
    status.update('pass_2_cymru', { ips_processed: 9, ips_total: 9, ip_errors: 0 });
    status.update('pass_3_merge', { ips_processed: 10, ips_total: 50, ip_errors: 0 });
    expect(seen).toEqual([
      'sessions 100/300 sessions', 'files (VirusTotal) 2/5 files', 'pass 1/3 MaxMind 50/50 IPs', 'pass 2/3 Cymru 9/9 IPs', 'pass 3/3 merge + GreyNoise 10/50 IPs',
    ]);
  });
});
