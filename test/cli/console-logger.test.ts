/**
 * Everything the console logger prints is terminal-safe and credential-free: log lines carry
 * attacker-chosen file names and paths, and URLs from flags and answers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { consoleLogger } from '../../src/cli/main.js';
import { runCli } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';

describe('consoleLogger', () => {
  it('escapes control characters and redacts URL credentials in every level', () => {
    const out: string[] = [];
    const log = consoleLogger({ verbose: true }, (l) => out.push(l));
    log.info('file evil\x1b[2J\x1b]0;pwned\x07.json done');
    log.warn('bidi \u202egnp.exe');
    log.error('GET https://u:topsecret@api.example/v3/x?key=K2 failed');
    log.debug('line\nbreak');
    expect(out).toEqual([
      '[INFO] file evil\\x1b[2J\\x1b]0;pwned\\x07.json done',
      '[WARNING] bidi \\u202egnp.exe',
      '[ERROR] GET https://u:***@api.example/v3/x?key=*** failed',
      '[DEBUG] line\\x0abreak',
    ]);
    for (const l of out) expect(l).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202a-\u202e]/);
  });
});

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] cowrie-loader with a hostile file name`, () => {
    it('prints the name escaped, never raw control characters', async () => {
      const logs = tempDir();
      const name = 'cowrie.json.\x1b]0;owned\x07\x1b[2J';
      fs.writeFileSync(path.join(logs, name), '{"eventid":"cowrie.session.connect","session":"abc123","src_ip":"1.2.3.4","timestamp":"2024-01-05T17:09:34.399033Z"}\nnot json\n');
      const r = await runCli('cowrie-loader', ['bulk', logs, '--db', await d.newUrl(), '-v'], { env: { COWRIE_CONFIG: '' } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('cowrie.json.\\x1b]0;owned\\x07\\x1b[2J');
      expect(r.stderr + r.stdout).not.toMatch(/[\x07\x1b]/);
    });
  });
}

describe('config file with an unknown key', () => {
  it('cowrie-enrich refresh: exit 2, one line naming the key', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'cowrie.toml'), '[enrichment]\nstale_dayz = 3\n');
    const r = await runCli('cowrie-enrich', ['refresh', '--ips', 'all', '--config', path.join(dir, 'cowrie.toml')], { env: { COWRIE_CONFIG: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`cowrie-enrich: error: config file ${path.join(dir, 'cowrie.toml')}, line 2: unknown key enrichment.stale_dayz`]);
  });
});
