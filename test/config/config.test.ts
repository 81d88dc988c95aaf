import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, resolveConfig } from '../../src/config/config.js';
import { UsageError } from '../../src/errors.js';
import { tempDir } from '../helpers/dialects.js';

describe('configuration: flag > env > file > default', () => {
  const file = { db: 'sqlite:from-file.db', enrichment: { commit_interval: 7, stale_days: 9 }, cymru: { host: 'file-host' } };

  it('takes defaults when nothing is given', () => {
    const c = resolveConfig({}, {}, {});
    expect(c.db).toBe('sqlite:cowrie.sqlite');
    expect(c.commitInterval).toBe(100);
    expect(c.cymruPort).toBe(43);
    expect(c.greynoiseRate).toBe(10);
    expect(c.greynoiseKey).toBeUndefined();
  });

  it('file beats default, env beats file, flag beats env', () => {
    expect(resolveConfig({}, {}, file).commitInterval).toBe(7);
    expect(resolveConfig({}, { COWRIE_COMMIT_INTERVAL: '8' }, file).commitInterval).toBe(8);
    expect(resolveConfig({ commitInterval: '9' }, { COWRIE_COMMIT_INTERVAL: '8' }, file).commitInterval).toBe(9);
    expect(resolveConfig({}, { COWRIE_DB_URL: 'sqlite:env.db' }, file).db).toBe('sqlite:env.db');
    expect(resolveConfig({ db: 'sqlite:flag.db' }, { COWRIE_DB_URL: 'sqlite:env.db' }, file).db).toBe('sqlite:flag.db');
    expect(resolveConfig({}, {}, file).cymruHost).toBe('file-host');
  });

  it('reads secrets from file: references and never echoes them in errors', () => {
    const dir = tempDir();
    const keyFile = path.join(dir, 'gn.key');
    fs.writeFileSync(keyFile, 'gn_secret_value\n');
    expect(resolveConfig({}, { GREYNOISE_API_KEY: `file:${keyFile}` }, {}).greynoiseKey).toBe('gn_secret_value');
    expect(() => resolveConfig({}, { VT_API_KEY: `file:${path.join(dir, 'missing')}` }, {})).toThrow(/cannot read VT_API_KEY/);
  });

  it('rejects invalid values with the setting named', () => {
    expect(() => resolveConfig({ commitInterval: '0' }, {}, {})).toThrow(UsageError);
    expect(() => resolveConfig({}, { COWRIE_CYMRU_PORT: 'abc' }, {})).toThrow(/COWRIE_CYMRU_PORT/);
    expect(() => resolveConfig({}, {}, { greynoise: { mode: 'turbo' } })).toThrow(/greynoise.mode/);
  });

  it('loads TOML config files and reports a broken one in one line', () => {
    const dir = tempDir();
    const good = path.join(dir, 'good.toml');
    fs.writeFileSync(good, 'db = "sqlite:x.db"\n[enrichment]\ncommit_interval = 50\n');
    expect(resolveConfig({}, {}, loadConfigFile(good, {})).commitInterval).toBe(50);
    const bad = path.join(dir, 'bad.toml');
    fs.writeFileSync(bad, 'db = \n');
    expect(() => loadConfigFile(bad, {})).toThrow(/not valid TOML/);
    expect(() => loadConfigFile(path.join(dir, 'none.toml'), {})).toThrow(/cannot read config file/);
  });
});

describe('config files: unknown keys are errors, messages are ours', () => {
  const write = (text: string) => {
    const file = path.join(tempDir(), 'cowrie.toml');
    fs.writeFileSync(file, text);
    return file;
  };

  it('names a misspelt top-level key, a misspelt key in a table and an unknown table', () => {
    expect(() => loadConfigFile(write('db = "sqlite:x.db"\nstatus_directory = "/tmp/s"\n'), {})).toThrow(/unknown key status_directory$/);
    expect(() => loadConfigFile(write('[enrichment]\ncomit_interval = 50\n'), {})).toThrow(/unknown key enrichment\.comit_interval$/);
    expect(() => loadConfigFile(write('[greynose]\napi_key = "x"\n'), {})).toThrow(/unknown key greynose$/);
    expect(() => loadConfigFile(write('enrichment = 5\n'), {})).toThrow(/enrichment must be a table/);
    for (const f of [write('x = 1\n')]) expect(() => loadConfigFile(f, {})).toThrow(UsageError);
  });

  it('accepts every documented key', () => {
    const file = write([
      'db = "sqlite:x.db"', 'status_dir = "/tmp/s"',
      '[enrichment]', 'commit_interval = 50', 'stale_days = 7', 'offline = true',
      '[maxmind]', 'dir = "/m"',
      '[cymru]', 'host = "h"', 'port = 43', 'batch_size = 100', 'timeout = 5',
      '[greynoise]', 'url = "https://api.greynoise.io"', 'api_key = "k"', 'rate = 1', 'daily_quota = 5', 'mode = "community"',
      '[virustotal]', 'url = "https://www.virustotal.com"', 'api_key = "k"', 'rate_per_minute = 4', 'daily_quota = 5',
    ].join('\n'));
    const c = resolveConfig({}, {}, loadConfigFile(file, {}));
    expect(c.commitInterval).toBe(50);
    expect(c.virustotalRate).toBe(4);
  });

  it('says what a valid value is, in our words, with where it came from', () => {
    expect(() => resolveConfig({ commitInterval: 'abc' }, {}, {})).toThrow(/^--commit-interval must be a whole number from 1 to 100000, got "abc"$/);
    expect(() => resolveConfig({}, { COWRIE_STALE_DAYS: 'soon' }, {})).toThrow(/^COWRIE_STALE_DAYS must be a number ≥ 0, got "soon"$/);
    expect(() => resolveConfig({}, {}, { greynoise: { daily_quota: 1e300 } })).toThrow(/^config key greynoise\.daily_quota must be a whole number ≥ 0/);
    expect(() => resolveConfig({ greynoiseMode: 'turbo' }, {}, {})).toThrow(/must be community or enterprise/);
    try {
      resolveConfig({ commitInterval: 'abc' }, {}, {});
    } catch (err) {
      expect((err as Error).message).not.toMatch(/Invalid input|NaN/);
    }
  });

  it('refuses credentials in API URLs and never echoes them', () => {
    let msg = '';
    try {
      resolveConfig({ virustotalUrl: 'https://me:vtsecret@vt.example/' }, {}, {});
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toMatch(/--virustotal-url must be an http/);
    expect(msg).not.toContain('vtsecret');
    expect(() => resolveConfig({ greynoiseUrl: 'ftp://x/' }, {}, {})).toThrow(/--greynoise-url/);
  });
});
