/**
 * New database and status files hold attack logs and host names: no world access (files 0640,
 * folders 0750) whatever the umask of the process that creates them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StatusEmitter } from '../../src/status/emitter.js';
import { openStore } from '../../src/store/store.js';
import { tempDir } from '../helpers/dialects.js';

const mode = (p: string) => fs.statSync(p).mode & 0o777;

describe('file modes under a permissive umask (000)', () => {
  let old = 0;
  beforeEach(() => {
    old = process.umask(0o000);
  });
  afterEach(() => {
    process.umask(old);
  });

  it('a new SQLite database and its WAL files are 0640', async () => {
    const file = path.join(tempDir(), 'new.sqlite');
    const store = await openStore(`sqlite:${file}`);
    try {
      await store.db.run("INSERT INTO schema_state (key, value) VALUES ('probe', 'x')");
      expect(mode(file).toString(8)).toBe('640');
      for (const side of ['-wal', '-shm']) if (fs.existsSync(file + side)) expect(mode(file + side).toString(8)).toBe('640');
    } finally {
      await store.close();
    }
  });

  it('an existing database keeps the mode its owner gave it', async () => {
    const file = path.join(tempDir(), 'old.sqlite');
    fs.writeFileSync(file, '');
    fs.chmodSync(file, 0o600);
    await (await openStore(`sqlite:${file}`)).close();
    expect(mode(file).toString(8)).toBe('600');
  });

  it('status folders are 0750 and status files 0640', () => {
    const root = tempDir();
    const dir = path.join(root, 'a', 'b', 'status');
    const emitter = new StatusEmitter({ dir });
    emitter.update('sessions', { sessions_processed: 1, sessions_total: 2 }, { force: true });
    emitter.finish('complete');
    for (const d of [path.join(root, 'a'), path.join(root, 'a', 'b'), dir]) expect(mode(d).toString(8)).toBe('750');
    for (const f of fs.readdirSync(dir)) expect(mode(path.join(dir, f)).toString(8)).toBe('640');
    expect(fs.readdirSync(dir).sort()).toEqual(['sessions.json', 'status.json']);
  });
});
