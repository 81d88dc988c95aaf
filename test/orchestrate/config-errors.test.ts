/**
 * sensors.toml mistakes (issue 13): each is one line naming the file, the line and the key, exit 2,
 * and nothing is opened, created or changed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyLine, loadConfigFile, resolveConfig, sensorsOf } from '../../src/config/config.js';
import { UsageError } from '../../src/errors.js';
import { runCli } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import pg from 'pg';

const GOOD = ['[[sensor]]', 'name = "a"', 'logpath = "logs/a"', ''];

/** [what is wrong, config text, the line it is on, what the message must say]. */
const MISTAKES: Array<[string, string[], number, RegExp]> = [
  ['unknown key in a sensor', [...GOOD, '[[sensor]]', 'name = "b"', 'logpath = "x"', 'log_path = "y"'], 8, /\[\[sensor\]\] #2: unknown key log_path$/],
  ['unknown table', [...GOOD, '[greynose]', 'api_key = "k"'], 5, /unknown key greynose$/],
  ['wrong type of a setting', ['[enrichment]', 'commit_interval = "50"', ...GOOD], 2, /enrichment\.commit_interval must be a whole number from 1 to 100000, got "50"$/],
  ['wrong type in a sensor', [...GOOD.slice(0, 3), 'enabled = "yes"'], 4, /\[\[sensor\]\] #1: enabled must be true or false$/],
  ['bad mode', [...GOOD.slice(0, 3), 'mode = "fast"'], 4, /\[\[sensor\]\] #1: mode must be "delta" or "bulk"$/],
  ['duplicate sensor name', [...GOOD, '[[sensor]]', 'name = "a"', 'logpath = "z"'], 6, /\[\[sensor\]\] #2: name a is also the name of \[\[sensor\]\] #1$/],
  ['sensor name with a space', ['[[sensor]]', 'name = "a b"', 'logpath = "x"'], 2, /name must be letters, digits/],
  ['missing name', [...GOOD, '[[sensor]]', 'logpath = "x"'], 5, /\[\[sensor\]\] #2: name is missing$/],
  ['missing logpath', [...GOOD, '', '[[sensor]]', 'name = "b"'], 6, /\[\[sensor\]\] #2: logpath is missing$/],
  ['env: reference to an unset variable', ['[greynoise]', 'api_key = "env:ORCH_TEST_UNSET_VAR"', ...GOOD], 2, /greynoise\.api_key: environment variable ORCH_TEST_UNSET_VAR is not set$/],
  ['file: reference to a missing file', [...GOOD, '[virustotal]', 'api_key = "file:no-such.key"'], 6, /virustotal\.api_key: cannot read .*no-such\.key \(ENOENT\)$/],
  ['a refresh limit that is neither a number nor "all"', ['[enrichment]', 'sessions = true', ...GOOD], 2, /enrichment\.sessions must be a whole number ≥ 0 or "all", got true$/],
  ['sensor as a plain table', ['[sensor]', 'name = "a"'], 1, /sensor must be written as \[\[sensor\]\] tables$/],
];

function writeConfig(lines: string[]): string {
  const dir = tempDir('cowrie-orch-cfg-');
  const file = path.join(dir, 'sensors.toml');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe('sensors.toml mistakes, in-process', () => {
  for (const [what, lines, line, message] of MISTAKES) {
    it(`${what}: names the file, line ${line} and the key`, () => {
      const file = writeConfig(lines);
      let err: unknown;
      try {
        resolveConfig({}, { ORCH_TEST_UNSET_VAR: undefined }, loadConfigFile(file, {}));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message.startsWith(`config file ${file}, line ${line}: `), (err as Error).message).toBe(true);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('resolves env: and file: references (file: relative to the config folder) and never shows a referenced value', () => {
    const file = writeConfig([
      'db = "env:ORCH_DB"', '[greynoise]', 'api_key = "file:keys/gn"', 'rate = "env:ORCH_RATE"', ...GOOD,
      '[[sensor]]', 'name = "b"', 'logpath = ["/abs/b", "rel/*.json"]', 'enable_asn_inventory = false',
    ]);
    fs.mkdirSync(path.join(path.dirname(file), 'keys'));
    fs.writeFileSync(path.join(path.dirname(file), 'keys', 'gn'), 'gn-secret-from-file\nsecond line\n');
    const env = { ORCH_DB: 'sqlite:/tmp/x.db', ORCH_RATE: '5' };
    const doc = loadConfigFile(file, env);
    const cfg = resolveConfig({}, {}, doc);
    expect(cfg.db).toBe('sqlite:/tmp/x.db');
    expect(cfg.greynoiseKey).toBe('gn-secret-from-file');
    expect(cfg.greynoiseRate).toBe(5);
    expect(sensorsOf(doc)).toEqual([
      { name: 'a', logpaths: [path.join(path.dirname(file), 'logs/a')], mode: 'delta', enabled: true, enableAsnInventory: true },
      { name: 'b', logpaths: ['/abs/b', path.join(path.dirname(file), 'rel/*.json')], mode: 'delta', enabled: true, enableAsnInventory: false },
    ]);
    // A referenced value that is invalid is named by its key, never shown.
    const bad = loadConfigFile(file, { ...env, ORCH_RATE: 'sekrit-rate' });
    expect(() => resolveConfig({}, {}, bad)).toThrow(/line 4: greynoise\.rate must be a number ≥ 0\.01, got \(hidden\)$/);
    // Flag > env > file for the orchestrate settings too.
    const withBatch = writeConfig(['[enrichment]', 'ip_batch_size = 7', 'sessions = "all"', ...GOOD]);
    const d = loadConfigFile(withBatch, {});
    expect(resolveConfig({}, {}, d)).toMatchObject({ ipBatchSize: 7, enrichSessions: 'all', enrichFiles: 0, maxmindAutoUpdate: false, maxmindUpdateAfterDays: 7 });
    expect(resolveConfig({}, { COWRIE_ENRICH_IPS: '8' }, d).ipBatchSize).toBe(8);
    expect(resolveConfig({ enrichIps: '9' }, { COWRIE_ENRICH_IPS: '8' }, d).ipBatchSize).toBe(9);
  });

  it('finds lines of keys in tables and in the n-th array table', () => {
    const text = 'db = "x"\n[enrichment]\n  stale_days = 3\n[[sensor]]\nname = "a"\n[[sensor]]\n"name" = "b"\nlogpath = [\n "a",\n]\n';
    expect(keyLine(text, ['db'])).toBe(1);
    expect(keyLine(text, ['enrichment', 'stale_days'])).toBe(3);
    expect(keyLine(text, ['sensor', 1, 'name'])).toBe(7);
    expect(keyLine(text, ['sensor', 1, 'logpath', 0])).toBe(8);
    expect(keyLine(text, ['sensor', 1])).toBe(6);
    expect(keyLine(text, ['nothing'])).toBeUndefined();
  });
});

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] sensors.toml mistakes, cowrie-orchestrate`, () => {
    it('each is one line with its line number, exit 2, and nothing is created or changed', async () => {
      const url = await d.newUrl();
      for (const [what, lines, line] of MISTAKES) {
        const statusDir = path.join(tempDir('cowrie-orch-status-'), 'status');
        const file = writeConfig([`db = ${JSON.stringify(url)}`, `status_dir = ${JSON.stringify(statusDir)}`, ...lines]);
        fs.mkdirSync(path.join(path.dirname(file), 'logs', 'a'), { recursive: true });
        const r = await runCli('cowrie-orchestrate', ['--config', file], { env: { COWRIE_CONFIG: '' } });
        expect(r.code, `${what}: ${r.stderr}`).toBe(2);
        const errLines = r.stderr.trim().split('\n');
        expect(errLines, what).toHaveLength(1);
        expect(errLines[0]).toContain(`cowrie-orchestrate: error: config file ${file}, line ${line + 2}: `);
        expect(r.stdout).toBe('');
        expect(fs.existsSync(statusDir), what).toBe(false);
      }
      // Nothing was created: no SQLite file, no tables in the PostgreSQL database.
      if (url.startsWith('sqlite:')) expect(fs.existsSync(url.slice('sqlite:'.length))).toBe(false);
      else {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          expect((await c.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public'")).rows[0].n).toBe(0);
        } finally {
          await c.end();
        }
      }
    });
  });
}
