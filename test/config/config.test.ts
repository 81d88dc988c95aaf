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
