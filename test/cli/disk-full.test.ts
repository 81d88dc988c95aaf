/**
 * A full disk during `cowrie-enrich refresh` is one line and exit 1, not an internal error with a
 * stack trace; committed work stays and the next run continues. Needs root to mount a small
 * tmpfs (the test machines run as root); skipped otherwise.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingest } from '../../src/ingest/ingest.js';
import { silentLogger } from '../../src/log.js';
import { generateLogs } from '../../src/sim/log-generator.js';
import { openStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';

const mountPoint = tempDir('cowrie-full-');
const mounted = process.getuid?.() === 0
  && spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'tmpfs', mountPoint]).status === 0;

afterAll(() => {
  if (mounted) spawnSync('umount', [mountPoint]);
});

/** Fill the file system until it refuses another byte; returns the filler's path. */
function fill(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) {
      try {
        fs.writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        if (chunk.length === 1) break;
        return fillRest(fd, filler);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

function fillRest(fd: number, filler: string): string {
  for (const size of [4096, 512, 1]) {
    const b = Buffer.alloc(size);
    for (;;) {
      try {
        fs.writeSync(fd, b);
      } catch {
        break;
      }
    }
  }
  return filler;
}

const ENV = { COWRIE_CONFIG: '' };

describe.skipIf(!mounted)('disk full during refresh', () => {
  const logs = tempDir();
  beforeAll(async () => {
    await generateLogs({ outDir: logs, sessions: 120, ips: 60, sensors: 1, days: 1, seed: 3 });
  });

  it('[sqlite] the database on a full disk: one line, exit 1; the next run continues', async () => {
    const dir = path.join(mountPoint, 'sqlite');
    fs.mkdirSync(dir);
    const url = `sqlite:${path.join(dir, 'cowrie.sqlite')}`;
    // Held open through the run, so the WAL and shared-memory files already exist: the disk fills
    // up while refresh writes, not while SQLite opens.
    const store = await openStore(url);
    await ingest(store, { paths: [logs], mode: 'bulk', logger: silentLogger });
    const filler = fill(mountPoint);
    try {
      const r = await runCli('cowrie-enrich', ['refresh', '--ips', 'all', '--offline', '--db', url, '--status-dir', tempDir()], { env: ENV });
      expect(r.code, r.stderr).toBe(1);
      const errors = r.stderr.trim().split('\n').filter((l) => !l.startsWith('[WARNING]'));
      expect(errors, r.stderr).toHaveLength(1);
      expect(errors[0]).toMatch(/^cowrie-enrich: error: disk full \(SQLITE_FULL\)/);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    } finally {
      fs.rmSync(filler);
      await store.close();
    }
    const check = await runCli('cowrie-db', ['check', '--db', url], { env: ENV });
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const again = await runCli('cowrie-enrich', ['refresh', '--ips', 'all', '--offline', '--db', url, '--status-dir', tempDir()], { env: ENV });
    expect(again.code, again.stderr).toBe(0);
    // Offline and without MaxMind, every IP is still owed a source: all 60 reached, none lost.
    expect(again.stdout).toMatch(/Refresh complete: 0 sessions, 0 files, 0 IPs updated \(0 IP errors, 60 IPs pending/);
  });

  for (const d of dialectCases()) {
    it.skipIf(d.skip)(`[${d.name}] status files on a full disk: one warning, the run completes`, async () => {
      const url = await d.newUrl();
      const store = await openStore(url);
      await ingest(store, { paths: [logs], mode: 'bulk', logger: silentLogger });
      await store.close();
      const statusDir = path.join(mountPoint, `status-${d.name}`);
      fs.mkdirSync(statusDir);
      const filler = fill(mountPoint);
      try {
        const r = await runCli('cowrie-enrich', ['refresh', '--ips', 'all', '--offline', '--db', url, '--status-dir', statusDir], { env: ENV });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr.split('\n').filter((l) => l.includes('cannot write status files'))).toHaveLength(1);
        expect(r.stdout).toMatch(/0 IP errors, 60 IPs pending/);
      } finally {
        fs.rmSync(filler);
      }
    });
  }
});
