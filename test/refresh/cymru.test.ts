/**
 * Pass 2 against the Team Cymru simulator: every response shape lands right in ip_inventory and
 * asn_inventory; a failed batch is logged and skipped while later ones succeed; a dead server is
 * left alone after three failed batches.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { worldAs, worldNetwork, WORLD_AS_COUNT } from '../../src/sim/world.js';
import { readJson } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { dialectCases } from '../helpers/dialects.js';
import { buildWorld, expectInOrder, insertIps, logLines, publicIps, type World } from '../helpers/world.js';

type Row = { ip_address: string; current_asn: number | null; geo_country: string | null; enrichment_pending: string | null; enrichment: unknown };

async function ipRows(store: Store): Promise<Map<string, Row & { e: Record<string, Record<string, unknown>> }>> {
  const rows = await store.db.query<Row>('SELECT ip_address, current_asn, geo_country, enrichment_pending, enrichment FROM ip_inventory');
  return new Map(rows.map((r) => [r.ip_address, { ...r, e: readJson<Record<string, Record<string, unknown>>>(r.enrichment) ?? {} }]));
}

const worldAsByNumber = new Map(Array.from({ length: WORLD_AS_COUNT }, (_, i) => worldAs(i, 7)).map((a) => [a.asn, a]));

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] refresh pass 2: Team Cymru`, () => {
    let w: World | null = null;
    let store: Store | null = null;
    afterEach(async () => {
      await w?.close(); // closes the stores it opened too
      w = null;
    });

    it('parses every response shape into ip_inventory, and asn_inventory from the AS lookups', async () => {
      const ips = publicIps(40, { firstOctets: [23, 45, 61, 89, 130, 185], seed: 7, maxmindAsn: false, perNetwork: 4 });
      const [moas, na, dup, err] = [ips[1], ips[6], ips[11], ips[16]];
      const v6 = '2a02:1810:4d02:5a00::7';
      const privateIp = '10.1.2.3';
      w = await buildWorld({
        url: await d.newUrl(), seed: 7,
        cymru: { header: true, faults: { multiOriginIps: [moas], naIps: [na], duplicateIps: [dup], errorIps: [err], garbage: 0.3 } },
      });
      store = await w.open();
      await insertIps(store, [...ips, v6, privateIp]);
      // One IP sat in another AS before: that AS must lose it from its counts.
      const formerAs = 4_200_000_001;
      await store.db.run('INSERT INTO asn_inventory (asn_number, organization_name, unique_ip_count, total_session_count) VALUES (?, ?, 1, 1)', [formerAs, 'FORMER']);
      await store.db.run('UPDATE ip_inventory SET current_asn = ? WHERE ip_address = ?', [formerAs, ips[0]]);

      const r = await w.refresh(['--ips', '0', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      // The private address is never sent to Cymru (nor GreyNoise): only the public ones are asked.
      const publicCount = ips.length + 1;
      expectInOrder(logLines(r.stderr), [
        `[INFO] Pass 1 complete: ${publicCount} IPs need Cymru ASN enrichment`,
        `[INFO] Cymru batch 1/1: ${publicCount - 1} IPs enriched`,
        `[INFO] Pass 2 complete: ${publicCount - 1} IPs enriched via Cymru`,
        `[INFO] Pass 3 complete: ${publicCount - 1} IPs enriched, 1 errors`,
        '[INFO] 1 IPs are not public addresses (private, loopback, link-local, CGNAT, documentation, reserved): marked with their scope, never sent to any source',
      ]);
      expect(w.cymru.stats.batchSizes[0]).toBe(publicCount);
      const rows = await ipRows(store);
      for (const ip of [...ips, v6]) {
        if (ip === err) continue;
        const net = worldNetwork(ip, 7);
        const row = rows.get(ip)!;
        const cy = row.e.cymru;
        expect(cy, ip).toBeDefined();
        if (ip === na) {
          // NA: no ASN, but the registry facts stay.
          expect(cy).toMatchObject({ asn: null, as_name: null, prefix: null, country: net.country, registry: net.registry });
          expect(row.current_asn).toBeNull();
          continue;
        }
        expect(cy.asn, ip).toBe(net.as!.asn);
        expect(cy.as_name, ip).toBe(net.as!.name); // commas and all
        expect(cy.country).toBe(net.country);
        expect(cy.registry).toBe(net.registry);
        expect(cy.allocated).toBe(net.allocated === '' ? null : net.allocated);
        expect(row.current_asn, ip).toBe(net.as!.asn);
        expect(row.enrichment_pending, ip).toBeNull();
        if (ip === moas || ip === dup) {
          // Several origins: all kept, the first is the current one.
          expect((cy.asns as number[])[0]).toBe(net.as!.asn);
          expect(cy.asns).toHaveLength(2);
        } else {
          expect(cy.asns).toBeUndefined();
        }
      }
      expect(rows.get(privateIp)!.e).toEqual({ scope: 'private' });
      expect(rows.get(privateIp)!.enrichment_pending).toBeNull();
      // The Error: line: an error of this run, owed to the next.
      expect(rows.get(err)!.e.cymru).toBeUndefined();
      expect(rows.get(err)!.enrichment_pending).toBe('cymru');
      expect(rows.get(v6)!.e.greynoise).toBeUndefined();
      expect(w.greynoise.stats.ipsRequested).not.toContain(v6);
      expect(w.greynoise.stats.ipsRequested).not.toContain(privateIp);

      // asn_inventory: details from Cymru's own AS lookup (the ASN's registry country), counts recomputed.
      const asns = await store.db.query<{ asn_number: number; organization_name: string; organization_country: string; rir_registry: string; unique_ip_count: number; total_session_count: number; enrichment: unknown }>(
        'SELECT asn_number, organization_name, organization_country, rir_registry, unique_ip_count, total_session_count, enrichment FROM asn_inventory');
      const current = new Map<number, number>();
      for (const row of rows.values()) if (row.current_asn !== null) current.set(Number(row.current_asn), (current.get(Number(row.current_asn)) ?? 0) + 1);
      expect(w.cymru.stats.asnsAnswered).toBe(current.size);
      for (const a of asns) {
        const n = Number(a.asn_number);
        if (n === formerAs) {
          expect([Number(a.unique_ip_count), Number(a.total_session_count)]).toEqual([0, 0]);
          continue;
        }
        const truth = worldAsByNumber.get(n)!;
        expect(a).toMatchObject({ organization_name: truth.name, organization_country: truth.country, rir_registry: truth.registry });
        expect(readJson<{ cymru: { allocated: string } }>(a.enrichment)!.cymru.allocated).toBe(truth.allocated);
        expect(Number(a.unique_ip_count)).toBe(current.get(n));
        expect(Number(a.total_session_count)).toBe(current.get(n)); // one session per inserted IP
      }
      expect(asns.map((a) => Number(a.asn_number)).sort()).toEqual([...current.keys(), formerAs].sort());
    });

    it('a failed batch is logged and skipped while later batches succeed; the next run finishes it', async () => {
      const ips = publicIps(150, { firstOctets: [23, 45, 61, 89, 130, 185], seed: 7, maxmindAsn: false, perNetwork: 10 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7 });
      store = await w.open();
      await insertIps(store, ips);
      // Batches follow selection order (most recently seen first = insertion order here): poison batch 2.
      w.cymru.setFaults({ dropOnLines: [ips[60]] });
      const r = await w.refresh(['--ips', '0', '--cymru-batch-size', '50', '--verbose']);
      expect(r.code, r.stderr).toBe(0);
      const lines = logLines(r.stderr);
      const failed = lines.filter((l) => l.startsWith('[ERROR] Cymru batch 2/3 failed: '));
      expect(failed).toHaveLength(1);
      expect(lines.filter((l) => l.startsWith('[ERROR]'))).toEqual(failed);
      const rows = await ipRows(store);
      const unanswered = ips.filter((ip) => !rows.get(ip)!.e.cymru);
      expect(unanswered).toContain(ips[60]);
      expect(unanswered.every((ip) => ips.indexOf(ip) >= 50 && ips.indexOf(ip) < 100)).toBe(true);
      expect(failed[0]).toMatch(new RegExp(`; ${unanswered.length} of 50 IPs unanswered$`));
      expectInOrder(lines, [
        '[INFO] Cymru batch 1/3: 50 IPs enriched',
        failed[0],
        '[INFO] Cymru batch 3/3: 50 IPs enriched (continuing despite previous failure)',
        `[INFO] Pass 2 complete: ${150 - unanswered.length} IPs enriched via Cymru`,
        // Left without an ASN by the failed batch: errors, not enriched.
        `[INFO] Pass 3 complete: ${150 - unanswered.length} IPs enriched, ${unanswered.length} errors`,
        `[INFO] Refresh complete: 0 sessions, 0 files, ${150 - unanswered.length} IPs updated`,
      ]);
      expect(r.stderr).not.toMatch(/DNS timeout/);
      for (const ip of unanswered) expect(rows.get(ip)!.enrichment_pending).toBe('cymru');

      w.cymru.setFaults({});
      const again = await w.refresh(['--ips', '0', '--cymru-batch-size', '50', '--verbose']);
      expect(again.code, again.stderr).toBe(0);
      expect(logLines(again.stderr)).toContain(`[INFO] Found ${unanswered.length} IPs to enrich`);
      expect(logLines(again.stderr)).toContain(`[INFO] Cymru batch 1/1: ${unanswered.length} IPs enriched`);
      const after = await ipRows(store);
      for (const ip of ips) expect(after.get(ip)!.e.cymru?.asn, ip).toBe(worldNetwork(ip, 7).as!.asn);
    });

    it('a dead server: three failed batches, then no more connections, exit 1, the rest still enriched', async () => {
      const ips = publicIps(250, { firstOctets: [23, 45, 61, 89, 130, 185], seed: 7, maxmindAsn: false, perNetwork: 10 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7, cymru: { faults: { refuse: 1 } } });
      store = await w.open();
      await insertIps(store, ips);
      const r = await w.refresh(['--ips', '0', '--cymru-batch-size', '50', '--verbose']);
      expect(r.code, r.stderr).toBe(1);
      const lines = logLines(r.stderr);
      const errors = lines.filter((l) => /^\[ERROR\] Cymru batch \d\/5 failed: /.test(l));
      // Three in a row stop it; a fourth may have been under way on the second connection.
      expect(errors.length).toBeGreaterThanOrEqual(3);
      expect(errors.length).toBeLessThanOrEqual(4);
      // Batches finish out of order on two connections: one still in flight when the third failure
      // lands is given up with the stop reason; every other failure names the refused connection.
      const refused = errors.filter((l) => / failed: connection (closed|reset) by 127\.0\.0\.1:\d+/.test(l));
      expect(refused.length).toBeGreaterThanOrEqual(3);
      expect(errors.filter((l) => !refused.includes(l)).every((l) => l.endsWith('failed: Cymru stopped after 3 failed batches'))).toBe(true);
      expect(lines.some((l) => /^\[ERROR\] Cymru stopped after 3 failed batches in a row \(\d failed in all\); \d+ IPs stay pending for the next run$/.test(l))).toBe(true);
      // Three tries per failed batch at most, on at most 2 connections at once: never hammered.
      expect(w.cymru.stats.connections).toBeLessThanOrEqual(errors.length * 3);
      expect(w.cymru.stats.maxConcurrent).toBeLessThanOrEqual(2);
      expect(r.stderr).toMatch(/cowrie-enrich: error: source failed for the whole run: cymru/);
      // No IP got its ASN: none counts as enriched.
      expect(lines.filter((l) => /^\[INFO\] Pass 3 complete: 0 IPs enriched, \d+ errors$/.test(l))).toHaveLength(1);
      const rows = await ipRows(store);
      for (const ip of ips) {
        const row = rows.get(ip)!;
        expect(row.enrichment_pending).toMatch(/^cymru/);
        expect(row.e.maxmind).toBeDefined();
        expect(row.geo_country).toBe(worldNetwork(ip, 7).country);
      }
      expect(Object.keys(rows.get(ips[0])!.e)).toContain('greynoise');
    });

    it.each([1, 2])('a dead server with only %i batch(es) (fewer than the stop rule needs) still fails the run: exit 1', async (batches) => {
      const ips = publicIps(batches * 20, { firstOctets: [23, 45, 61, 89], seed: 7, maxmindAsn: false, perNetwork: 10 });
      w = await buildWorld({ url: await d.newUrl(), seed: 7, cymru: { faults: { refuse: 1 } } });
      store = await w.open();
      await insertIps(store, ips);
      const r = await w.refresh(['--ips', '0', '--cymru-batch-size', '20', '--verbose']);
      expect(r.code, r.stderr).toBe(1);
      const lines = logLines(r.stderr);
      expect(lines).toContain(`[ERROR] Cymru answered none of the ${ips.length} IPs asked (${batches} of ${batches} batches failed); they stay pending for the next run`);
      expect(lines).toContain(`[INFO] Pass 3 complete: 0 IPs enriched, ${ips.length} errors`);
      expect(r.stderr).toMatch(/cowrie-enrich: error: source failed for the whole run: cymru/);
      const rows = await ipRows(store);
      for (const ip of ips) expect(rows.get(ip)!.enrichment_pending).toBe('cymru');
    });
  });
}
