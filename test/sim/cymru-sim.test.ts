import { connect } from 'node:net';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { registerCymruCommand, runCymruSimCommand } from '../../src/cli/sim/cymru.js';
import {
  CYMRU_ASN_HEADER, CYMRU_IP_HEADER, formatAsnRow, formatBanner, formatIpRow, startCymruSim,
} from '../../src/sim/cymru-sim.js';
import type { CymruSim, CymruSimOptions } from '../../src/sim/cymru-sim.js';
import { WORLD_AS_COUNT, isPrivateIpv4, worldAs, worldNetwork } from '../../src/sim/world.js';

const FIXED = new Date('2024-10-15T05:46:42Z');
const ROW = /^(.{7}) \| (.{16}|.{40}) \| (.{19}) \| (.{2}) \| (.{8}) \| (.{10}) \| (.+)$/;

let sim: CymruSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(o: CymruSimOptions = {}): Promise<CymruSim> {
  sim = await startCymruSim({ now: () => FIXED, ...o });
  return sim;
}

/** Send raw bytes, collect everything until the server closes (or `waitMs` passes). */
function ask(port: number, request: string, waitMs = 5000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    const s = connect(port, '127.0.0.1', () => s.write(request));
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text, closed: false });
    }, waitMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

const bulk = (...lines: string[]) => `begin\nverbose\n${lines.join('\n')}\nend\n`;

function findIp(seed: number, announced: boolean): string {
  for (let a = 1; a < 224; a++) {
    for (let b = 0; b < 256; b++) {
      const ip = `${a}.${b}.7.9`;
      if (!isPrivateIpv4(ip) && (worldNetwork(ip, seed).as !== null) === announced) return ip;
    }
  }
  throw new Error('no such network in this world');
}

describe('row formatting', () => {
  it('reproduces real captured rows byte for byte', () => {
    expect(formatBanner(FIXED)).toBe('Bulk mode; whois.cymru.com [2024-10-15 05:46:42 +0000]');
    expect(formatIpRow('15169', '74.125.225.229', '74.125.225.0/24', 'US', 'arin', '2007-03-13', 'GOOGLE, US')).toBe(
      '15169   | 74.125.225.229   | 74.125.225.0/24     | US | arin     | 2007-03-13 | GOOGLE, US',
    );
    expect(formatIpRow('15169', '2001:4860:4860::8888', '2001:4860::/32', 'US', 'arin', '2005-03-14', 'GOOGLE, US')).toBe(
      '15169   | 2001:4860:4860::8888                     | 2001:4860::/32      | US | arin     | 2005-03-14 | GOOGLE, US',
    );
    expect(formatIpRow('NA', '10.0.0.1', 'NA', '', 'other', '', 'NA')).toBe(
      'NA      | 10.0.0.1         | NA                  |    | other    |            | NA',
    );
    expect(formatIpRow('6079', '207.229.165.18', '207.229.128.0/18', 'US', 'arin', '', 'RCN-AS - RCN, US')).toBe(
      '6079    | 207.229.165.18   | 207.229.128.0/18    | US | arin     |            | RCN-AS - RCN, US',
    );
    expect(formatAsnRow({ asn: 23028, country: 'US', registry: 'arin', allocated: '2002-01-04', name: 'TEAM-CYMRU, US' })).toBe(
      '23028   | US | arin     | 2002-01-04 | TEAM-CYMRU, US',
    );
  });
});

describe('cymru simulator over TCP', () => {
  it('answers a verbose bulk request from the world, in the measured column format, then closes', async () => {
    const s = await start({ seed: 7 });
    const na = findIp(7, false);
    const hit = findIp(7, true);
    const ips = [hit, '2001:db8:1234::1', '10.1.2.3', na];
    const { text, closed } = await ask(s.port, bulk(...ips));
    expect(closed).toBe(true);
    const lines = text.split('\n');
    expect(lines[0]).toBe('Bulk mode; whois.cymru.com [2024-10-15 05:46:42 +0000]');
    expect(lines.at(-1)).toBe(''); // LF after the last row
    const rows = lines.slice(1, -1);
    expect(rows).toHaveLength(4);
    for (const r of rows) expect(r).toMatch(ROW);

    const w = worldNetwork(hit, 7);
    const f = ROW.exec(rows[0])!.slice(1).map((x) => x.trim());
    expect(f).toEqual([String(w.as!.asn), hit, w.prefix, w.country, w.registry, w.allocated, w.as!.name]);
    expect(w.prefix).toMatch(/\.0\.0\/16$/);
    expect(ROW.exec(rows[1])![2]).toHaveLength(40);
    expect(rows[1].startsWith(`${String(worldNetwork('2001:db8:1234::1', 7).as?.asn ?? 'NA').padEnd(7)} | 2001:db8:1234::1 `)).toBe(true);
    expect(rows[2]).toBe('NA      | 10.1.2.3         | NA                  |    | other    |            | NA');
    const wn = worldNetwork(na, 7);
    expect(rows[3]).toBe(formatIpRow('NA', na, 'NA', wn.country, wn.registry, wn.allocated, 'NA'));
    expect(wn.country).toMatch(/^[A-Z]{2}$/);
    expect(s.stats).toMatchObject({ connections: 1, batches: 1, batchSizes: [4], ipsAnswered: 4 });
  });

  it('numbers Error: lines by input line and answers AS<n> lines with the 5-field AS row', async () => {
    const s = await start({ seed: 3 });
    const as = worldAs(5, 3);
    const { text } = await ask(s.port, bulk('no-such-host.example', `AS${as.asn}`, 'as4294967295', '8.8.8.8'));
    const lines = text.trimEnd().split('\n');
    expect(lines[1]).toBe('Error: no ASN or IP match on line 3.');
    expect(lines[2]).toBe(formatAsnRow(as));
    expect(lines[2]).toMatch(/^\d+ +\| [A-Z]{2} \| [a-z]+ +\| \d{4}-\d{2}-\d{2} \| .+$/);
    expect(lines[3]).toBe('Error: no ASN or IP match on line 5.');
    expect(lines[4]).toMatch(/^\S+ +\| 8\.8\.8\.8 +\| /);
    expect(s.stats.asnsAnswered).toBe(1);
  });

  it('accepts CRLF and upper-case keywords with the same answer, and is deterministic per seed', async () => {
    const s = await start({ seed: 11 });
    const ips = ['1.2.3.4', '100.64.9.9', '2a01:4f8::1'];
    const lf = await ask(s.port, bulk(...ips));
    const crlf = await ask(s.port, `BEGIN\r\nVERBOSE\r\n${ips.join('\r\n')}\r\nEND\r\n`);
    expect(crlf.text).toBe(lf.text);
    await s.close();
    const other = await start({ seed: 12 });
    const again = await ask(other.port, bulk(...ips));
    expect(again.text).not.toBe(lf.text);
  });

  it('prints column headings only when asked to (option or `header` keyword)', async () => {
    const plain = await start({ seed: 1 });
    const a = await ask(plain.port, bulk('1.2.3.4'));
    expect(a.text).not.toContain('BGP Prefix');
    const kw = await ask(plain.port, 'begin\nverbose\nheader\n1.2.3.4\nAS' + worldAs(0, 1).asn + '\nend\n');
    const kl = kw.text.split('\n');
    expect(kl[1]).toBe(CYMRU_IP_HEADER);
    expect(kl[3]).toBe(CYMRU_ASN_HEADER);
    await plain.close();
    const withHeader = await start({ seed: 1, header: true });
    const b = await ask(withHeader.port, bulk('1.2.3.4'));
    expect(b.text.split('\n')[1]).toBe(CYMRU_IP_HEADER);
  });

  it('answers a single whois query with heading and row', async () => {
    const s = await start();
    const { text } = await ask(s.port, ' -v 8.8.8.8\n');
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe(CYMRU_IP_HEADER);
    expect(lines[1]).toMatch(/\| 8\.8\.8\.8 +\|/);
  });

  it('injects multi-origin, duplicate, NA and Error: answers for listed IPs', async () => {
    const ips = ['20.1.1.1', '30.1.1.1', '40.1.1.1', '50.1.1.1', '60.1.1.1'];
    const announced = ips.filter((ip) => worldNetwork(ip, 1).as !== null);
    expect(announced.length).toBeGreaterThanOrEqual(4);
    const [moas, dup, na, err] = announced;
    const s = await start({ faults: { multiOriginIps: [moas], duplicateIps: [dup], naIps: [na], errorIps: [err] } });
    const { text } = await ask(s.port, bulk(...ips));
    const rows = text.trimEnd().split('\n').slice(1);
    const moasRow = rows.find((r) => r.includes(`| ${moas} `))!;
    expect(moasRow).toMatch(new RegExp(`^${worldNetwork(moas, 1).as!.asn} \\d+ \\| `));
    expect(rows.filter((r) => r.includes(`| ${dup} `))).toHaveLength(2);
    expect(rows.find((r) => r.includes(`| ${na} `))).toMatch(/^NA {6}\| .* \| NA {18}\| [A-Z]{2} \| [a-z]+ +\| .* \| NA$/);
    expect(rows).toContain(`Error: no ASN or IP match on line ${3 + ips.indexOf(err)}.`);
  });

  it('injects garbage lines at the given rate', async () => {
    const s = await start({ faults: { garbage: 1 } });
    const { text } = await ask(s.port, bulk('1.2.3.4', '5.6.7.8'));
    const rows = text.trimEnd().split('\n').slice(1);
    expect(rows).toHaveLength(4);
    expect(rows.filter((r) => ROW.test(r))).toHaveLength(2);
  });

  it('refuses, fails the first N, stalls, drops on poisonous lines', async () => {
    const s = await start({ faults: { failFirstN: 1 } });
    expect(await ask(s.port, bulk('1.2.3.4'))).toEqual({ text: '', closed: true });
    expect((await ask(s.port, bulk('1.2.3.4'))).text).toContain('| 1.2.3.4 ');
    s.setFaults({ refuse: 1 });
    expect(await ask(s.port, bulk('1.2.3.4'))).toEqual({ text: '', closed: true });
    s.setFaults({ stall: 1 });
    expect(await ask(s.port, bulk('1.2.3.4'), 300)).toEqual({ text: '', closed: false });
    s.setFaults({ stallOnLines: ['5.6.7.8'] });
    const stalled = await ask(s.port, bulk('1.2.3.4', '5.6.7.8', '9.9.9.9'), 300);
    expect(stalled.closed).toBe(false);
    expect(stalled.text.trimEnd().split('\n')).toHaveLength(2); // banner + first row
    s.setFaults({ dropOnLines: ['5.6.7.8'] });
    const dropped = await ask(s.port, bulk('1.2.3.4', '5.6.7.8', '9.9.9.9'));
    expect(dropped.closed).toBe(true);
    expect(dropped.text.trimEnd().split('\n')).toHaveLength(2);
    expect(s.stats.refused).toBe(2);
  });

  it('drops the first N served connections part-way', async () => {
    const s = await start({ faults: { dropFirstN: 1, dropAfterLines: 2 } });
    const ips = ['1.2.3.4', '5.6.7.8', '9.9.9.9', '11.1.1.1'];
    const first = await ask(s.port, bulk(...ips));
    expect(first.text.trimEnd().split('\n')).toHaveLength(3);
    const second = await ask(s.port, bulk(...ips));
    expect(second.text.trimEnd().split('\n')).toHaveLength(5);
  });

  it('waits the configured latency per batch before answering', async () => {
    const s = await start({ latencyMsPerBatch: 150 });
    const t0 = Date.now();
    const { text } = await ask(s.port, bulk('1.2.3.4'));
    expect(text).toContain('| 1.2.3.4 ');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('rate-limits connections per second: the excess get nothing and are closed', async () => {
    const s = await start({ maxConnectionsPerSecond: 3, latencyMsPerBatch: 50 });
    const answers = await Promise.all(Array.from({ length: 6 }, () => ask(s.port, bulk('1.2.3.4'))));
    expect(answers.filter((a) => a.text.includes('| 1.2.3.4 '))).toHaveLength(3);
    expect(answers.filter((a) => a.text === '' && a.closed)).toHaveLength(3);
    expect(s.stats).toMatchObject({ connections: 6, rateLimited: 3 });
    expect(s.stats.maxConcurrent).toBeGreaterThanOrEqual(3);
    for (const t of s.stats.servedTimes) {
      expect(s.stats.servedTimes.filter((u) => u >= t && u < t + 1000).length).toBeLessThanOrEqual(3);
    }
  });

  it('covers every world AS in AS lookups', async () => {
    const s = await start({ seed: 5 });
    const asns = [...new Set(Array.from({ length: WORLD_AS_COUNT }, (_, i) => worldAs(i, 5).asn))];
    const { text } = await ask(s.port, bulk(...asns.map((a) => `AS${a}`)));
    const rows = text.trimEnd().split('\n').slice(1);
    expect(rows).toHaveLength(asns.length);
    expect(rows.every((r) => !r.startsWith('Error'))).toBe(true);
  });
});

describe('cowrie-sim cymru', () => {
  it('rejects bad values', async () => {
    const program = new Command().exitOverride();
    registerCymruCommand(program);
    for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: () => {} });
    await expect(program.parseAsync(['node', 'cowrie-sim', 'cymru', '--fault-rate', '2'])).rejects.toThrow(/probability/);
    await expect(program.parseAsync(['node', 'cowrie-sim', 'cymru', '--port', 'x'])).rejects.toThrow(/whole number from 0 to 65535/);
    await expect(program.parseAsync(['node', 'cowrie-sim', 'cymru', '--port', '99999'])).rejects.toThrow(/whole number from 0 to 65535/);
  });

  it('prints where it listens, serves until told to stop, then prints a summary', async () => {
    const lines: string[] = [];
    let stop!: () => void;
    const until = new Promise<void>((r) => (stop = r));
    let listening!: () => void;
    const ready = new Promise<void>((r) => (listening = r));
    const run = runCymruSimCommand(
      { host: '127.0.0.1', port: 0, seed: 1, latencyMs: 0, latencyPerIpMs: 0, rateLimit: 5, faultRate: 0, dropRate: 0, stallRate: 0, refuseRate: 0, failFirst: 0 },
      (l) => {
        lines.push(l);
        listening();
      },
      until,
    );
    await ready;
    const m = /^cymru simulator listening on 127\.0\.0\.1:(\d+)$/.exec(lines[0]);
    expect(m).not.toBeNull();
    const { text } = await ask(Number(m![1]), bulk('1.2.3.4'));
    expect(text).toMatch(/^Bulk mode; whois\.cymru\.com \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000\]\n.*\| 1\.2\.3\.4 /);
    stop();
    await run;
    expect(lines[1]).toBe('cymru simulator stopped: 1 connections, 1 batches, 1 IPs and 0 ASNs answered, 0 rate-limited');
  });
});
