/**
 * Which IPs a refresh picks (never enriched, stale, pending, `--ip`), caches that spare the
 * network, `--offline`, a missing GreyNoise key, and bad arguments.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isGreyNoiseRoutable } from '../../src/enrich/sources/greynoise.js';
import { readJson } from '../../src/store/schema.js';
import { openStore, type Store } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { buildWorld, insertIps, logLines, maxmindHasAsn, type World } from '../helpers/world.js';

const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().replace('Z', '000Z');

async function stamps(store: Store): Promise<Map<string, string | null>> {
  const rows = await store.db.query<{ ip_address: string; enrichment_updated_at: string | null }>('SELECT ip_address, enrichment_updated_at FROM ip_inventory');
  return new Map(rows.map((r) => [r.ip_address, r.enrichment_updated_at]));
}

function changed(before: Map<string, string | null>, after: Map<string, string | null>): string[] {
  return [...after].filter(([ip, t]) => t !== before.get(ip)).map(([ip]) => ip).sort();
}

async function setBack(store: Store, ips: string[], days: number): Promise<void> {
  await store.db.run(`UPDATE ip_inventory SET enrichment_updated_at = ? WHERE ip_address IN (${ips.map(() => '?').join(',')})`, [daysAgo(days), ...ips]);
}

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] refresh: selection, caches, offline`, () => {
    let w: World | null = null;
    let store: Store | null = null;
    afterEach(async () => {
      await w?.close(); // closes the stores it opened too
      w = null;
    });

    it('takes never-enriched, stale (per --stale-days) and pending IPs, most recently seen first; --ip takes any', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 200, ips: 60 });
      store = await w.open();
      const bySeen = (await store.db.query<{ ip_address: string }>('SELECT ip_address FROM ip_inventory ORDER BY last_seen DESC, ip_address'))
        .map((r) => r.ip_address);
      const total = bySeen.length;

      let before = await stamps(store);
      const r1 = await w.refresh(['--ips', '20']);
      expect(r1.code, r1.stderr).toBe(0);
      let after = await stamps(store);
      expect(changed(before, after)).toEqual(bySeen.slice(0, 20).sort());

      const r2 = await w.refresh(['--ips', '0', '--verbose']);
      expect(logLines(r2.stderr)).toContain(`[INFO] Found ${total - 20} IPs to enrich`);

      // Everything is fresh now: 20 days back is fresh for the default 30, 40 days back is stale,
      // and a pending source is due whatever the age.
      const [a, b, c] = [bySeen.slice(0, 5), bySeen.slice(5, 10), bySeen.slice(10, 13)];
      await setBack(store, a, 20);
      await setBack(store, b, 40);
      await store.db.run(`UPDATE ip_inventory SET enrichment_pending = 'greynoise' WHERE ip_address IN (?, ?, ?)`, c);
      before = await stamps(store);
      const r3 = await w.refresh(['--ips', '0', '--verbose']);
      expect(r3.code, r3.stderr).toBe(0);
      expect(logLines(r3.stderr)).toContain('[INFO] Found 8 IPs to enrich');
      after = await stamps(store);
      expect(changed(before, after)).toEqual([...b, ...c].sort());
      const stillPending = await store.db.query('SELECT ip_address FROM ip_inventory WHERE enrichment_pending IS NOT NULL');
      expect(stillPending).toEqual([]);

      before = after;
      const r4 = await w.refresh(['--ips', '0', '--stale-days', '10', '--verbose']);
      expect(logLines(r4.stderr)).toContain('[INFO] Querying IPs needing enrichment (>10 days stale)...');
      expect(logLines(r4.stderr)).toContain('[INFO] Found 5 IPs to enrich');
      after = await stamps(store);
      expect(changed(before, after)).toEqual([...a].sort());

      // --ip refreshes a fresh address; an address not in the inventory is named in a warning.
      before = after;
      const r5 = await w.refresh(['--ip', bySeen[30], '--ip', '203.0.113.77', '--verbose']);
      expect(r5.code, r5.stderr).toBe(0);
      expect(logLines(r5.stderr)).toContain('[INFO] Pass 3 complete: 1 IPs enriched, 0 errors');
      expect(logLines(r5.stderr)).toContain('[WARNING] 1 of the given IPs are not in ip_inventory (load their logs first)');
      expect(changed(before, await stamps(store))).toEqual([bySeen[30]]);
    });

    it('a second run within the TTLs makes no network call at all', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 200, ips: 60 });
      const r1 = await w.refresh(['--ips', '0']);
      expect(r1.code, r1.stderr).toBe(0);
      store = await w.open();
      const total = w.logs!.uniqueIps;
      const first = new Map((await store.db.query<{ ip_address: string; enrichment: unknown }>('SELECT ip_address, enrichment FROM ip_inventory'))
        .map((r) => [r.ip_address, readJson<Record<string, unknown>>(r.enrichment)]));
      const cy = { ...w.cymru.stats, batchSizes: [...w.cymru.stats.batchSizes] };
      const gn = w.greynoise.stats.requests;
      expect(cy.connections).toBeGreaterThan(0);
      expect(gn).toBeGreaterThan(0);

      // Stale by age (30 days), fresh in the caches (Cymru 7 days, GreyNoise 7 days, ASN details 30 days).
      await store.db.run('UPDATE ip_inventory SET enrichment_updated_at = ?', [daysAgo(31)]);
      const r2 = await w.refresh(['--ips', '0', '--verbose']);
      expect(r2.code, r2.stderr).toBe(0);
      expect(w.cymru.stats.connections).toBe(cy.connections);
      expect(w.greynoise.stats.requests).toBe(gn);
      const need = [...first.keys()].filter((ip) => !maxmindHasAsn(ip, w!.seed)).length;
      const lines = logLines(r2.stderr);
      expect(lines).toContain(`[INFO] Found ${total} IPs to enrich`);
      expect(lines).toContain(`[INFO] Cymru: ${need} IPs answered from cache (fresh within TTL), 0 to query`);
      expect(lines).toContain(`[INFO] Pass 2 complete: ${need} IPs enriched via Cymru`);
      expect(lines).toContain(`[INFO] Pass 3 complete: ${total} IPs enriched, 0 errors`);
      // Same answers as the first run, from the cache.
      const second = await store.db.query<{ ip_address: string; enrichment: unknown; enrichment_updated_at: string }>('SELECT ip_address, enrichment, enrichment_updated_at FROM ip_inventory');
      for (const row of second) {
        const e = readJson<Record<string, { fetched_at?: string }>>(row.enrichment)!;
        const was = first.get(row.ip_address)!;
        expect(e.cymru).toEqual(was.cymru);
        expect(e.greynoise).toEqual(was.greynoise);
        expect(Date.parse(row.enrichment_updated_at)).toBeGreaterThan(Date.now() - 60_000);
      }
    });

    it('--offline makes no network call and leaves what the network sources owe pending for the next run', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 200, ips: 60 });
      const r = await w.refresh(['--ips', '0', '--files', 'all', '--offline', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      expect([w.cymru.stats.connections, w.greynoise.stats.requests, w.virustotal.stats.requests]).toEqual([0, 0, 0]);
      const lines = logLines(r.stderr);
      expect(lines).toContain('[INFO] [files] --offline: VirusTotal lookups skipped');
      expect(lines.some((l) => l.startsWith('[INFO] Pass 2/3: Cymru ASN enrichment skipped (--offline)'))).toBe(true);
      store = await w.open();
      const rows = await store.db.query<{ ip_address: string; current_asn: number | null; enrichment_pending: string | null; enrichment: unknown }>(
        'SELECT ip_address, current_asn, enrichment_pending, enrichment FROM ip_inventory');
      for (const row of rows) {
        const has = maxmindHasAsn(row.ip_address, w.seed);
        const owed = [...(has ? [] : ['cymru']), ...(isGreyNoiseRoutable(row.ip_address) ? ['greynoise'] : [])];
        expect(row.enrichment_pending, row.ip_address).toBe(owed.length ? owed.join(',') : null);
        expect(readJson<Record<string, unknown>>(row.enrichment)).toHaveProperty('maxmind');
        if (has) expect(row.current_asn).not.toBeNull();
      }
      // The next online run asks only for what is owed.
      const online = await w.refresh(['--ips', '0', '--verbose']);
      expect(online.code, online.stderr).toBe(0);
      const need = rows.filter((x) => !maxmindHasAsn(x.ip_address, w!.seed)).length;
      expect(w.cymru.stats.batchSizes[0]).toBe(need);
      expect(new Set(w.greynoise.stats.ipsRequested)).toEqual(new Set(rows.map((x) => x.ip_address).filter(isGreyNoiseRoutable)));
      expect(await store.db.query('SELECT ip_address FROM ip_inventory WHERE enrichment_pending IS NOT NULL')).toEqual([]);
    });

    it('without GREYNOISE_API_KEY: one INFO line even without --verbose, IPs pending for GreyNoise until a run with a key', async () => {
      w = await buildWorld({ url: await d.newUrl(), sessions: 120, ips: 40 });
      const r = await w.refresh(['--ips', '0'], { env: { GREYNOISE_API_KEY: '' } });
      expect(r.code, r.stderr).toBe(0);
      const skipped = '[INFO] GREYNOISE_API_KEY is not set: GreyNoise lookups skipped (IPs stay pending for GreyNoise until a run with a key)';
      expect(r.stderr.split('\n').filter((l) => /GREYNOISE_API_KEY|GreyNoise/i.test(l))).toEqual([skipped]);
      expect(w.greynoise.stats.requests).toBe(0);
      expect(w.cymru.stats.connections).toBeGreaterThan(0);
      store = await w.open();
      const rows = await store.db.query<{ ip_address: string; enrichment_pending: string | null }>(
        "SELECT ip_address, enrichment_pending FROM ip_inventory WHERE enrichment_updated_at IS NOT NULL AND enrichment->'maxmind' IS NOT NULL");
      expect(rows).toHaveLength(w.logs!.uniqueIps);
      for (const row of rows) expect(row.enrichment_pending, row.ip_address).toBe(isGreyNoiseRoutable(row.ip_address) ? 'greynoise' : null);
      // Owed only GreyNoise: another run without a key does not redo them…
      const again = await w.refresh(['--ips', '0', '--verbose'], { env: { GREYNOISE_API_KEY: '' } });
      expect(logLines(again.stderr)).toContain('[INFO] Found 0 IPs to enrich');
      // …a run with a key asks GreyNoise about exactly them.
      const keyed = await w.refresh(['--ips', '0', '--verbose']);
      expect(keyed.code, keyed.stderr).toBe(0);
      expect(new Set(w.greynoise.stats.ipsRequested)).toEqual(new Set(rows.map((x) => x.ip_address).filter(isGreyNoiseRoutable)));
      expect(await store.db.query('SELECT ip_address FROM ip_inventory WHERE enrichment_pending IS NOT NULL')).toEqual([]);
    });
  });
}

describe('refresh: bad arguments', () => {
  const db = () => `sqlite:${tempDir()}/x.sqlite`;
  it.each([
    [['--ips', 'abc'], /^cowrie-enrich: error: --ips must be a whole number ≥ 0 or "all", got "abc"$/],
    [['--sessions', '1.5'], /^cowrie-enrich: error: --sessions must be a whole number ≥ 0 or "all", got "1.5"$/],
    [['--ips', '10', '--commit-interval', '0'], /^cowrie-enrich: error: --commit-interval must be a whole number from 1 to 100000, got "0"$/],
    [['--sessions', '0', '--files', '0'], /^cowrie-enrich: error: nothing to refresh: /],
    [['--ip', '999.1.1.1'], /^cowrie-enrich: error: not an IP address: "999\.1\.1\.1"$/],
    [['--ip', '1.2.3.4', '--ip', 'notanip'], /^cowrie-enrich: error: not an IP address: "notanip"$/],
  ])('%j exits 2 with one line', async (args, msg) => {
    const r = await runCli('cowrie-enrich', ['refresh', '--db', db(), ...args], { env: { GREYNOISE_API_KEY: '', VT_API_KEY: '' } });
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(msg);
    expect(r.stdout).toBe('');
  });

  it('geoip: not an IP address exits 2 with one line', async () => {
    const r = await runCli('cowrie-enrich', ['geoip', 'notanip']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['cowrie-enrich: error: not an IP address: "notanip"']);
    expect(r.stdout).toBe('');
  });

  it.each([
    ['a folder that does not exist', (dir: string) => path.join(dir, 'nope'), /^cowrie-enrich: error: MaxMind directory .*nope does not exist or is not a folder/],
    ['a folder without databases', (dir: string) => dir, /^cowrie-enrich: error: MaxMind directory .* holds no usable database: /],
  ])('--maxmind-dir pointing at %s: exit 2 with one line, nothing stamped enriched', async (_what, pick, msg) => {
    const dir = tempDir();
    const url = `sqlite:${dir}/x.sqlite`;
    const store = await openStore(url);
    await insertIps(store, ['23.1.2.3']);
    await store.close();
    const r = await runCli('cowrie-enrich', ['refresh', '--db', url, '--ips', '0', '--maxmind-dir', pick(dir), '--offline'], { env: { GREYNOISE_API_KEY: '', VT_API_KEY: '' } });
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(msg);
    const again = await openStore(url);
    try {
      expect(await again.db.query('SELECT ip_address FROM ip_inventory WHERE enrichment_updated_at IS NOT NULL')).toEqual([]);
    } finally {
      await again.close();
    }
  });

  it('an unusable database exits 2 with one line', async () => {
    const r = await runCli('cowrie-enrich', ['refresh', '--ips', '10', '--db', 'sqlite:/nonexistent/folder/x.sqlite']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual(['cowrie-enrich: error: cannot open SQLite database /nonexistent/folder/x.sqlite: folder /nonexistent/folder does not exist']);
  });
});
