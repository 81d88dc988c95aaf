/**
 * DShield/ISC against its simulator on both databases (the standard source cases), plus what is
 * DShield's own: the contact address in the User-Agent, and no lookups without one.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { enabledSources } from '../../src/enrich/sources/index.js';
import { MemoryLogger } from '../../src/log.js';
import { dshieldAnswer, startDShieldSim, USER_AGENT_MESSAGE } from '../../src/sim/dshield-sim.js';
import { ipSourceSuite, refusingServer } from '../helpers/ip-source-suite.js';

const EMAIL = 'honeypot-ops@example.org';

ipSourceSuite({
  name: 'dshield',
  title: 'DShield',
  defaultOn: true,
  start: (o) => startDShieldSim(o),
  settings: (url) => ({ dshieldUrl: url, dshieldEmail: EMAIL, dshieldRate: 20 }),
  // ISC refuses User-Agents it does not accept with a 403 and a text: a server that refuses ours.
  rejected: { start: () => refusingServer(USER_AGENT_MESSAGE) },
  quota: [{ how: 'the server answers 429 with a Retry-After until midnight', sim: { dailyQuota: 4 } }],
  knows: (ip, seed) => {
    const b = (dshieldAnswer(ip, seed).body as { ip: Record<string, unknown> }).ip;
    return b.count !== null || b.threatfeeds !== undefined;
  },
  expectStored: (ip, stored, seed) => {
    const b = (dshieldAnswer(ip, seed).body as { ip: Record<string, unknown> }).ip;
    expect(stored).toMatchObject({
      count: b.count, attacks: b.attacks, first_reported: b.mindate, last_reported: b.maxdate, as: b.as,
      threat_feeds: Object.keys((b.threatfeeds as object | undefined) ?? {}), reported: b.count !== null || b.threatfeeds !== undefined,
    });
    expect(typeof stored.fetched_at).toBe('string');
  },
});

describe('DShield settings', () => {
  it('is not used without --dshield-email (not asked, not owed), and sends the address in its User-Agent', async () => {
    const logger = new MemoryLogger();
    expect(enabledSources(resolveConfig({}, {}, {}), logger).map((s) => s.name)).not.toContain('dshield');
    expect(enabledSources(resolveConfig({ dshieldEmail: EMAIL }, {}, {}), logger).map((s) => s.name)).toContain('dshield');
    expect(() => resolveConfig({ dshieldEmail: 'not an address' }, {}, {})).toThrow(/--dshield-email must be an e-mail address/);
    const sim = await startDShieldSim({ seed: 1 });
    try {
      const c = resolveConfig({ dshieldUrl: sim.url, dshieldEmail: EMAIL }, {}, {});
      const source = enabledSources(c, logger).find((s) => s.name === 'dshield')!;
      const handle = (await source.open(c as never, { logger, now: () => new Date() })) as { request(k: string[]): { headers: Record<string, string> } };
      expect(handle.request(['8.8.8.8']).headers['User-Agent']).toContain(EMAIL);
    } finally {
      await sim.close();
    }
  });
});
