import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { LATEST_VERSION } from '../../src/store/migrations.js';
import { dbCheck, dbInfo } from '../../src/store/inspect.js';
import { migrate, openStore, schemaVersion, type Store } from '../../src/store/store.js';
import { dialectCases } from '../helpers/dialects.js';
import { ROOT, runCli } from '../helpers/cli.js';

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] schema and migrations`, () => {
    const open: Store[] = [];
    afterEach(async () => {
      while (open.length) await open.pop()!.close();
    });

    it('creates every table on open and records the schema version', async () => {
      const store = await openStore(await d.newUrl());
      open.push(store);
      expect(await schemaVersion(store)).toBe(LATEST_VERSION);
      const info = await dbInfo(store);
      expect(info.dialect).toBe(d.name);
      expect(Object.keys(info.rowCounts)).toEqual(expect.arrayContaining(['raw_events', 'ip_inventory', 'asn_inventory', 'dead_letter_events']));
      expect(info.rowCounts.schema_state).toBe(1);
      expect(await dbCheck(store)).toEqual([]);
    });

    it('migrating again applies nothing', async () => {
      const store = await openStore(await d.newUrl());
      open.push(store);
      const again = await migrate(store);
      expect(again.applied).toEqual([]);
      expect(again.from).toBe(LATEST_VERSION);
    });

    it('refuses a database newer than the code, and leaves it untouched', async () => {
      const url = await d.newUrl();
      const store = await openStore(url);
      await store.db.run("UPDATE schema_state SET value = '999' WHERE key = 'schema_version'");
      await store.close();
      await expect(openStore(url)).rejects.toThrow(/schema version 999, newer than this program supports/);
      const raw = await openStore(url, { migrate: false });
      open.push(raw);
      expect(await schemaVersion(raw)).toBe(999);
    });

    it('stores JSON, booleans and timestamps the same way on both dialects', async () => {
      const store = await openStore(await d.newUrl());
      open.push(store);
      const db = store.db;
      await db.run(
        `INSERT INTO ip_inventory (ip_address, first_seen, last_seen, session_count, sensors, is_scanner, enrichment) VALUES (?, ?, ?, 1, ${db.jsonParam()}, ?, ${db.jsonParam()})`,
        ['1.2.3.4', '2024-01-05T17:09:34.399033Z', '2024-01-06T00:00:00.000000Z', JSON.stringify(['a']), true, JSON.stringify({ cymru: { as_name: 'X, US' } })],
      );
      // The guide's own operator chain works on both (SQLite >= 3.38 has -> and ->>).
      const [row] = await db.query<Record<string, unknown>>("SELECT first_seen, enrichment->'cymru'->>'as_name' AS a FROM ip_inventory");
      expect(row.first_seen).toBe('2024-01-05T17:09:34.399033Z');
      expect(row.a).toBe('X, US');
    });

    it('check reports orphan rows and exits 1 from the CLI', async () => {
      const url = await d.newUrl();
      const store = await openStore(url);
      await store.db.run("INSERT INTO files (shasum, session_id, enrichment_status) VALUES ('ab', 'nosuchsession', 'pending')");
      const problems = await dbCheck(store);
      await store.close();
      expect(problems.map((p) => p.message)).toContain('1 files without a session');
      const r = await runCli('cowrie-db', ['check', '--db', url]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('orphan: 1 files without a session');
    });

    it('check reports schema drift', async () => {
      const url = await d.newUrl();
      const store = await openStore(url);
      open.push(store);
      await store.db.run('DROP TABLE api_quota');
      expect((await dbCheck(store)).map((p) => p.message)).toContain('table api_quota is missing');
    });

    it('cowrie-db migrate and info work from the command line', async () => {
      const url = await d.newUrl();
      const m = await runCli('cowrie-db', ['migrate', '--db', url]);
      expect(m.code).toBe(0);
      expect(m.stdout).toContain(`from version 0 to ${LATEST_VERSION}`);
      const i = await runCli('cowrie-db', ['info', '--database', url, '--json']);
      expect(i.code).toBe(0);
      const info = JSON.parse(i.stdout);
      expect(info.schemaVersion).toBe(LATEST_VERSION);
      expect(info.dialect).toBe(d.name);
      if (d.name === 'postgres') expect(i.stdout).not.toContain(decodeURIComponent(new URL(url).password));
    });
  });
}

describe('two migrations at once', () => {
  const pg = dialectCases().find((c) => c.name === 'postgres')!;
  it.skipIf(pg.skip)('[postgres] both processes succeed and the schema is migrated once', async () => {
    const url = await pg.newUrl();
    const runs = await Promise.all([0, 1, 2].map(() => runCli('cowrie-db', ['migrate', '--db', url])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(runs.filter((r) => r.stdout.includes('from version 0')).length).toBe(1);
    expect(runs.filter((r) => r.stdout.includes('is up to date')).length).toBe(2);
  });

  it('[sqlite] both processes succeed and the schema is migrated once', async () => {
    const url = await dialectCases()[0].newUrl();
    const runs = await Promise.all([0, 1, 2].map(() => runCli('cowrie-db', ['migrate', '--db', url])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(runs.filter((r) => r.stdout.includes('from version 0')).length).toBe(1);
  });
});

describe('unusable databases: one clear line, exit 2', () => {
  const pg = dialectCases().find((c) => c.name === 'postgres')!;

  it('bad --db value', async () => {
    const r = await runCli('cowrie-db', ['info', '--db', 'mysql://u:pw@h/x']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unsupported database URL scheme/);
    expect(r.stderr).not.toContain('pw@');
  });

  it('closed port', async () => {
    const r = await runCli('cowrie-db', ['info', '--db', 'postgresql://u:hunter2@127.0.0.1:1/x']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/connection refused/);
    expect(r.stderr).not.toContain('hunter2');
  });

  it.skipIf(pg.skip)('wrong password', async () => {
    const u = new URL(await pg.newUrl());
    u.password = 'definitely-wrong';
    const r = await runCli('cowrie-db', ['info', '--db', u.toString()]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/rejected the password/);
    expect(r.stderr).not.toContain('definitely-wrong');
  });

  it('read-only SQLite file', async () => {
    const url = await dialectCases()[0].newUrl();
    const file = url.slice('sqlite:'.length);
    await (await openStore(url)).close();
    fs.chmodSync(file, 0o444);
    let r: { code: number | null; stderr: string };
    if (process.getuid?.() === 0) {
      // root writes any file: run the command as nobody, who can read but not write it.
      fs.chmodSync(path.dirname(file), 0o755);
      const p = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, path.join(ROOT, 'dist/src/cli/cowrie-db.js'), 'info', '--db', url], { encoding: 'utf8' });
      r = { code: p.status, stderr: p.stderr };
    } else {
      r = await runCli('cowrie-db', ['info', '--db', url]);
    }
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/read-only/);
  });

  it('a file that is not a database', async () => {
    const url = await dialectCases()[0].newUrl();
    fs.writeFileSync(url.slice('sqlite:'.length), 'this is not sqlite'.repeat(100));
    const r = await runCli('cowrie-db', ['info', '--db', url]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('typed errors are UsageError', async () => {
    await expect(openStore('sqlite:/no/such/dir/x.db')).rejects.toBeInstanceOf(UsageError);
  });
});
