/** `cowrie-enrich refresh --help`: one group per source, built from what each source declares. */
import { describe, expect, it } from 'vitest';
import { SOURCES } from '../../src/enrich/sources/index.js';
import { runCli } from '../helpers/cli.js';

describe('refresh --help', () => {
  it('shows each source as its own group, with its flags, defaults and env names', async () => {
    const r = await runCli('cowrie-enrich', ['refresh', '--help'], { env: { COWRIE_CONFIG: '' } });
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout.replace(/\s+/g, ' ');
    for (const s of SOURCES) expect(out).toContain(`${s.title}`);
    expect(out).toContain('GreyNoise (key from env GREYNOISE_API_KEY):');
    expect(out).toContain('AbuseIPDB (key from env ABUSEIPDB_API_KEY):');
    expect(out).toMatch(/--dshield-email <address> your contact address/);
    expect(out).toMatch(/--dshield-rate <n> .*\(default 1; env COWRIE_DSHIELD_RATE\)/);
    expect(out).toMatch(/--internetdb-url <url> .*non-commercial/);
    expect(out).toMatch(/--greynoise-rate <n> .*\(default 10; env COWRIE_GREYNOISE_RATE\)/);
    expect(out).toContain('--sources <list>');
    // Secrets have no flag: environment or config file only.
    expect(out).not.toMatch(/--\w+-key\b/);
  });

  it('an unknown source in --sources is one line, exit 2', async () => {
    const r = await runCli('cowrie-enrich', ['refresh', '--ips', 'all', '--sources', 'maxmind,shodan', '--db', 'sqlite:/nonexistent/x.db'], { env: { COWRIE_CONFIG: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--sources must be a comma-separated list of maxmind, cymru/);
  });
});
