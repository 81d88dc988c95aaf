import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../../src/log.js';
import { phaseFileName, StatusEmitter } from '../../src/status/emitter.js';

const root = mkdtempSync(join(tmpdir(), 'cowrie-status-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const T0 = Date.UTC(2025, 10, 6, 10, 23, 45, 678);
const read = (dir: string, name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8'));

function clocked(opts: { minIntervalMs?: number } = {}) {
  const dir = join(root, `s${n++}`, 'nested', 'status');
  let now = T0;
  const logger = new MemoryLogger();
  const emitter = new StatusEmitter({ dir, logger, now: () => now, ...opts });
  return { dir, emitter, logger, advance: (ms: number) => { now += ms; } };
}

describe('StatusEmitter', () => {
  it('writes the phase file and the aggregate, creating the folder, with the guide timestamp format', () => {
    const { dir, emitter } = clocked();
    expect(emitter.update('pass_3_merge', { ips_processed: 87, ips_total: 100, ip_errors: 1 })).toBe(true);
    expect(read(dir, 'pass_3_merge.json')).toEqual({ phase: 'pass_3_merge', ips_processed: 87, ips_total: 100, ip_errors: 1, timestamp: '2025-11-06T10:23:45Z' });
    expect(read(dir, 'status.json')).toEqual({
      phase: 'pass_3_merge', state: 'running', timestamp: '2025-11-06T10:23:45Z',
      phases: { pass_3_merge: { phase: 'pass_3_merge', ips_processed: 87, ips_total: 100, ip_errors: 1, timestamp: '2025-11-06T10:23:45Z' } },
    });
    // Atomic writes leave no temp files behind.
    expect(readdirSync(dir).sort()).toEqual(['pass_3_merge.json', 'status.json']);
  });

  it('throttles writes to minIntervalMs unless forced or the phase changes', () => {
    const { dir, emitter, advance } = clocked({ minIntervalMs: 2000 });
    emitter.update('ingest', { events: 1 });
    advance(500);
    expect(emitter.update('ingest', { events: 2 })).toBe(false);
    expect(read(dir, 'ingest.json').events).toBe(1);
    advance(1499);
    emitter.update('ingest', { events: 3 });
    expect(read(dir, 'ingest.json').events).toBe(1);
    advance(1);
    expect(emitter.update('ingest', { events: 4 })).toBe(true);
    expect(read(dir, 'ingest.json')).toMatchObject({ events: 4, timestamp: '2025-11-06T10:23:47Z' });
    advance(10);
    expect(emitter.update('ingest', { events: 5 }, { force: true })).toBe(true);
    expect(read(dir, 'ingest.json').events).toBe(5);
    advance(10);
    expect(emitter.update('enrich', { ips: 1 })).toBe(true);
    const status = read(dir, 'status.json');
    expect(status.phase).toBe('enrich');
    expect(Object.keys(status.phases)).toEqual(['ingest', 'enrich']);
    expect(status.phases.ingest.events).toBe(5);
  });

  it('finish writes the final figures with the state, and later updates are ignored', () => {
    const { dir, emitter, advance } = clocked();
    emitter.update('ingest', { events: 1 });
    advance(100);
    emitter.update('ingest', { events: 99 }); // throttled, but finish writes it
    expect(emitter.finish('aborted')).toBe(true);
    expect(read(dir, 'ingest.json')).toMatchObject({ phase: 'ingest', events: 99, state: 'aborted' });
    expect(read(dir, 'status.json')).toMatchObject({ phase: 'ingest', state: 'aborted' });
    expect(emitter.state).toBe('aborted');
    advance(10_000);
    expect(emitter.update('ingest', { events: 100 }, { force: true })).toBe(false);
    expect(emitter.finish('complete')).toBe(false);
    expect(read(dir, 'status.json').state).toBe('aborted');
  });

  it('finish can add figures and works before any update', () => {
    const { dir, emitter } = clocked();
    emitter.finish('failed', { error: 'boom' });
    expect(read(dir, 'status.json')).toMatchObject({ phase: 'run', state: 'failed', phases: { run: { error: 'boom', state: 'failed' } } });
  });

  it('writes nothing without a folder', () => {
    const emitter = new StatusEmitter({});
    expect(emitter.update('ingest', { a: 1 }, { force: true })).toBe(false);
    expect(emitter.finish('complete')).toBe(false);
  });

  it('reports write errors once through the logger and never throws', () => {
    const blocker = join(root, `blocker${n++}`);
    writeFileSync(blocker, 'a file where the folder should be');
    const logger = new MemoryLogger();
    const emitter = new StatusEmitter({ dir: join(blocker, 'status'), logger, minIntervalMs: 0 });
    expect(() => {
      emitter.update('ingest', { a: 1 });
      emitter.update('ingest', { a: 2 }, { force: true });
      emitter.finish('complete');
    }).not.toThrow();
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(/^\[WARNING\] cannot write status files in .*blocker/);
    // Values JSON cannot hold are a write error too, not a crash.
    const { emitter: e2, logger: l2 } = clocked();
    expect(() => e2.update('x', { big: 1n })).not.toThrow();
    expect(l2.lines).toHaveLength(1);
  });

  it('keeps phase file names safe', () => {
    expect(phaseFileName('pass_3_merge')).toBe('pass_3_merge.json');
    expect(phaseFileName('../etc/passwd')).toBe('__etc_passwd.json');
    expect(phaseFileName('status')).toBe('phase_status.json');
    const { dir, emitter } = clocked();
    emitter.update('status', { a: 1 });
    expect(read(dir, 'phase_status.json').a).toBe(1);
    expect(read(dir, 'status.json').phase).toBe('status');
    expect(existsSync(join(dir, '..', 'etc'))).toBe(false);
  });
});
