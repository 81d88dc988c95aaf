/**
 * Shodan InternetDB against its simulator on both databases (the standard source cases): no key,
 * 404 is "nothing known" and cached, off unless named in --sources.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { enabledSources } from '../../src/enrich/sources/index.js';
import { MemoryLogger } from '../../src/log.js';
import { internetDbAnswer, startInternetDbSim } from '../../src/sim/internetdb-sim.js';
import { ipSourceSuite, refusingServer } from '../helpers/ip-source-suite.js';

ipSourceSuite({
  name: 'internetdb',
  title: 'InternetDB',
  defaultOn: false,
  start: (o) => startInternetDbSim(o),
  settings: (url) => ({ internetdbUrl: url, internetdbRate: 20 }),
  rejected: { start: () => refusingServer('{"detail":"Forbidden"}') },
  quota: [{ how: 'the server answers 429 with a Retry-After until midnight', sim: { dailyQuota: 4 } }],
  knows: (ip, seed) => internetDbAnswer(ip, seed).status === 200,
  expectStored: (ip, stored, seed) => {
    const a = internetDbAnswer(ip, seed);
    if (a.status === 200) expect(stored).toMatchObject({ known: true, ports: a.body.ports, hostnames: a.body.hostnames, cpes: a.body.cpes, tags: a.body.tags, vulns: a.body.vulns });
    else expect(stored).toMatchObject({ known: false, ports: [] });
  },
});

describe('InternetDB settings', () => {
  it('is off by default and on when named in --sources', () => {
    const logger = new MemoryLogger();
    expect(enabledSources(resolveConfig({}, {}, {}), logger).map((s) => s.name)).not.toContain('internetdb');
    expect(enabledSources(resolveConfig({ sources: 'maxmind,internetdb' }, {}, {}), logger).map((s) => s.name)).toEqual(['maxmind', 'internetdb']);
    expect(() => resolveConfig({ sources: 'maxmind,shodan' }, {}, {})).toThrow(/--sources must be a comma-separated list of maxmind, cymru, greynoise, virustotal, dshield, abuseipdb, internetdb/);
  });
});
