import { describe, expect, it } from 'vitest';
import { normaliseIp, parseAsnResponse, parseAsnResponseFull, parseBulkResponse } from '../../src/enrich/sources/cymru-parse.js';

// Captures copied verbatim from docs/PROTOCOLS.md §1.4–1.6.
const CAPTURE_2024 = `Bulk mode; whois.cymru.com [2024-10-15 05:46:42 +0000]
15169   | 74.125.225.229   | 74.125.225.0/24     | US | arin     | 2007-03-13 | GOOGLE, US
15169   | 2001:4860:4860::8888                     | 2001:4860::/32      | US | arin     | 2005-03-14 | GOOGLE, US
2856    | 62.239.237.1     | 62.239.0.0/16       | GB | ripencc  | 2001-01-02 | BT-UK-AS BTnet UK Regional network, GB
2856    | 2a00:2381:ffff::1                        | 2a00:2380::/25      | GB | ripencc  | 2007-08-29 | BT-UK-AS BTnet UK Regional network, GB
264653  | 2801:10:c000::                           | 2801:10:c000::/48   | CO | lacnic   | 2013-10-29 | Universidad Catolica de Oriente, CO
12091   | 196.11.240.215   | 196.11.240.0/24     | ZA | afrinic  | 1994-07-21 | MTNNS-1, ZA
`;

const CAPTURE_2016 = `Bulk mode; whois.cymru.com [2016-05-02 04:34:05 +0000]
23028   | 68.22.187.5      | 68.22.187.0/24      | US | arin     | 2002-03-15 | TEAM-CYMRU - Team Cymru Inc., US
6079    | 207.229.165.18   | 207.229.128.0/18    | US | arin     |            | RCN-AS - RCN, US
701     | 198.6.1.65       | 198.6.0.0/16        | US | arin     |            | UUNET - MCI Communications Services, Inc. d/b/a Verizon Business, US
`;

const CAPTURE_2023 = `Bulk mode; whois.cymru.com [2023-07-19 04:06:45 +0000]
NA      | 10.0.0.1         | NA                  |    | other    |            | NA
12119   | 216.169.31.34    | 216.169.30.0/23     | US | arin     | 2017-06-27 | I3BROADBAND, US
15133   | 93.184.216.34    | 93.184.216.0/24     | US | ripencc  | 2008-06-02 | EDGECAST, US
`;

const EDGE_LINES = `NA      | 193.32.71.189    | NA                  | UA | ripencc  | 2018-04-26 | NA
NA      | 198.28.137.80    | NA                  | US | arin     | 2019-07-01 | NA
NA      | 10.0.0.1         | NA                  |    | other    |            | NA
6079    | 207.229.165.18   | 207.229.128.0/18    | US | arin     |            | RCN-AS - RCN, US
Error: no ASN or IP match on line 3.
`;

const ASN_CAPTURE = `AS      | CC | Registry | Allocated  | AS Name
23028   | US | arin     | 2002-01-04 | TEAM-CYMRU, US
15169   | US | arin     | 2000-03-30 | GOOGLE, US
12389   | RU | ripencc  | 2005-07-01 | ROSTELECOM-AS, RU
`;

describe('parseBulkResponse on real captures', () => {
  it('reads the 2024 mixed IPv4/IPv6 capture, keyed by IP, names with commas intact', () => {
    const ips = ['74.125.225.229', '2001:4860:4860::8888', '62.239.237.1', '2a00:2381:ffff::1', '2801:10:c000::', '196.11.240.215'];
    const m = parseBulkResponse(CAPTURE_2024, ips);
    expect(m.size).toBe(6);
    expect(m.get('2001:4860:4860::8888')).toEqual({
      asn: 15169, as_name: 'GOOGLE, US', prefix: '2001:4860::/32', country: 'US', registry: 'arin', allocated: '2005-03-14',
    });
    expect(m.get('62.239.237.1')).toMatchObject({ asn: 2856, as_name: 'BT-UK-AS BTnet UK Regional network, GB', registry: 'ripencc' });
    expect(m.get('2801:10:c000::')).toMatchObject({ asn: 264653, prefix: '2801:10:c000::/48', country: 'CO', registry: 'lacnic' });
    expect(m.get('196.11.240.215')).toMatchObject({ asn: 12091, country: 'ZA', registry: 'afrinic', allocated: '1994-07-21' });
  });

  it('keys on the IP column, not row order, and matches IPv6 by canonical form', () => {
    // Requested in another order and in non-canonical IPv6 spelling.
    const ips = ['196.11.240.215', '2001:4860:4860:0:0:0:0:8888', '2A00:2381:FFFF:0::1', '74.125.225.229'];
    const m = parseBulkResponse(CAPTURE_2024, ips);
    expect([...m.keys()].sort()).toEqual([...ips].sort());
    expect(m.get('2001:4860:4860:0:0:0:0:8888')).toMatchObject({ asn: 15169, prefix: '2001:4860::/32' });
    expect(m.get('2A00:2381:FFFF:0::1')).toMatchObject({ asn: 2856, prefix: '2a00:2380::/25' });
    expect(m.get('196.11.240.215')).toMatchObject({ asn: 12091 });
  });

  it('reads blank allocation dates in the 2016 capture as null', () => {
    const m = parseBulkResponse(CAPTURE_2016, ['68.22.187.5', '207.229.165.18', '198.6.1.65']);
    expect(m.get('68.22.187.5')).toMatchObject({ asn: 23028, allocated: '2002-03-15', as_name: 'TEAM-CYMRU - Team Cymru Inc., US' });
    expect(m.get('207.229.165.18')).toEqual({
      asn: 6079, as_name: 'RCN-AS - RCN, US', prefix: '207.229.128.0/18', country: 'US', registry: 'arin', allocated: null,
    });
    expect(m.get('198.6.1.65')).toMatchObject({
      asn: 701, allocated: null, as_name: 'UUNET - MCI Communications Services, Inc. d/b/a Verizon Business, US',
    });
  });

  it('reads the 2023 private/NA capture: NA row keeps registry, blank CC is null', () => {
    const m = parseBulkResponse(CAPTURE_2023, ['10.0.0.1', '216.169.31.34', '93.184.216.34']);
    expect(m.get('10.0.0.1')).toEqual({ asn: null, as_name: null, prefix: null, country: null, registry: 'other', allocated: null });
    expect(m.get('216.169.31.34')).toMatchObject({ asn: 12119, prefix: '216.169.30.0/23', as_name: 'I3BROADBAND, US' });
  });

  it('reads the §1.5 edge lines: NA rows keep country, registry and date; Error: line 3 is the first query', () => {
    const ips = ['bad.example', '193.32.71.189', '198.28.137.80', '10.0.0.1', '207.229.165.18'];
    const m = parseBulkResponse(EDGE_LINES, ips);
    expect(m.get('bad.example')).toBe('error');
    expect(m.get('193.32.71.189')).toEqual({ asn: null, as_name: null, prefix: null, country: 'UA', registry: 'ripencc', allocated: '2018-04-26' });
    expect(m.get('198.28.137.80')).toMatchObject({ asn: null, country: 'US', registry: 'arin', allocated: '2019-07-01' });
    expect(m.get('207.229.165.18')).toMatchObject({ asn: 6079, allocated: null });
  });

  it('maps "Error: … line N." to the N-th request line (begin = 1, verbose = 2)', () => {
    const text = `Bulk mode; whois.cymru.com [2018-01-01 00:00:00 +0000]
Error: no ASN or IP match on line 3.
Error: no ASN or IP match on line 5.
23028   | 68.22.187.5      | 68.22.187.0/24      | US | arin     | 2002-03-15 | TEAM-CYMRU - Team Cymru Inc., US
Error: no ASN or IP match on line 99.
`;
    const ips = ['host1.example', '68.22.187.5', 'host2.example', '8.8.8.8'];
    const m = parseBulkResponse(text, ips);
    expect(m.get('host1.example')).toBe('error');
    expect(m.get('host2.example')).toBe('error');
    expect(m.get('68.22.187.5')).toMatchObject({ asn: 23028 });
    // Neither a row nor an error: absent, so the caller knows it went unanswered.
    expect(m.has('8.8.8.8')).toBe(false);
    expect(m.size).toBe(3);
  });

  it('keeps every origin of a multi-origin row, the first as the current ASN', () => {
    const text = `Bulk mode; whois.cymru.com [2024-10-15 05:46:42 +0000]
4808 23724 | 1.2.4.8          | 1.2.4.0/24          | CN | apnic    | 2010-04-07 | CHINA169-BJ China Unicom Beijing Province Network, CN
134877 135216 | 103.1.2.3        | 103.1.2.0/24        | IN | apnic    | 2016-01-01 | EXAMPLE, IN
`;
    const m = parseBulkResponse(text, ['1.2.4.8', '103.1.2.3']);
    expect(m.get('1.2.4.8')).toMatchObject({ asn: 4808, asns: [4808, 23724], country: 'CN' });
    expect(m.get('103.1.2.3')).toMatchObject({ asn: 134877, asns: [134877, 135216] });
  });

  it('keeps the first of duplicate rows and merges the other ASNs into asns', () => {
    const text = `Bulk mode; whois.cymru.com [2016-05-02 04:34:05 +0000]
23028   | 68.22.187.5      | 68.22.187.0/24      | US | arin     | 2002-03-15 | TEAM-CYMRU - Team Cymru Inc., US
23028   | 68.22.187.5      | 68.22.187.0/24      | US | arin     | 2002-03-15 | TEAM-CYMRU - Team Cymru Inc., US
3356    | 68.22.187.5      | 68.22.0.0/16        | US | arin     | 2002-03-15 | LEVEL3, US
701     | 198.6.1.65       | 198.6.0.0/16        | US | arin     |            | UUNET, US
`;
    const m = parseBulkResponse(text, ['68.22.187.5', '198.6.1.65']);
    expect(m.get('68.22.187.5')).toEqual({
      asn: 23028, asns: [23028, 3356], as_name: 'TEAM-CYMRU - Team Cymru Inc., US', prefix: '68.22.187.0/24',
      country: 'US', registry: 'arin', allocated: '2002-03-15',
    });
    expect(m.get('198.6.1.65')).not.toHaveProperty('asns');
  });

  it('skips a header line, garbage lines and rows nobody asked for', () => {
    const text = `Bulk mode; whois.cymru.com [2024-10-15 05:46:42 +0000]
AS      | IP               | BGP Prefix          | CC | Registry | Allocated  | AS Name
%% garbled 3f2a %%
1234    | 203.0.
| | | |
\u0000\u0007 ####
99999   | 9.9.9.9          | 9.9.9.0/24          | US | arin     | 2000-01-01 | QUAD9, US
15169   | 74.125.225.229   | 74.125.225.0/24     | US | arin     | 2007-03-13 | GOOGLE, US
`;
    const m = parseBulkResponse(text, ['74.125.225.229']);
    expect([...m.entries()]).toEqual([
      ['74.125.225.229', { asn: 15169, as_name: 'GOOGLE, US', prefix: '74.125.225.0/24', country: 'US', registry: 'arin', allocated: '2007-03-13' }],
    ]);
  });

  it('reads CRLF answers and an answer cut off mid-row', () => {
    const text = CAPTURE_2016.replace(/\n/g, '\r\n').slice(0, -60);
    const m = parseBulkResponse(text, ['68.22.187.5', '207.229.165.18', '198.6.1.65']);
    expect(m.get('68.22.187.5')).toMatchObject({ asn: 23028, as_name: 'TEAM-CYMRU - Team Cymru Inc., US' });
    expect(m.get('207.229.165.18')).toMatchObject({ asn: 6079, as_name: 'RCN-AS - RCN, US' });
    expect(m.has('198.6.1.65')).toBe(false);
  });

  it('never throws on arbitrary input', () => {
    for (const junk of ['', '\n\n', '|||||||', 'Error: line', 'Bulk mode', 'x'.repeat(10_000), 'NA | NA | NA | NA | NA | NA | NA']) {
      expect(parseBulkResponse(junk, ['1.2.3.4']).size).toBe(0);
    }
  });
});

describe('parseAsnResponse', () => {
  it('reads 5-field AS rows (header skipped) with the ASN own country', () => {
    const m = parseAsnResponse(ASN_CAPTURE, [23028, 15169, 12389]);
    expect(m.get(23028)).toEqual({ asn: 23028, as_name: 'TEAM-CYMRU, US', country: 'US', registry: 'arin', allocated: '2002-01-04' });
    expect(m.get(12389)).toEqual({ asn: 12389, as_name: 'ROSTELECOM-AS, RU', country: 'RU', registry: 'ripencc', allocated: '2005-07-01' });
    expect(m.size).toBe(3);
  });

  it('records Error: lines by request position and ignores unrequested rows', () => {
    const text = `Bulk mode; whois.cymru.com [2024-10-15 05:46:42 +0000]
15169   | US | arin     | 2000-03-30 | GOOGLE, US
Error: no ASN or IP match on line 4.
12389   | RU | ripencc  | 2005-07-01 | ROSTELECOM-AS, RU
`;
    const { values, errors } = parseAsnResponseFull(text, [15169, 4294967294]);
    expect([...values.keys()]).toEqual([15169]);
    expect([...errors]).toEqual([4294967294]);
  });
});

describe('normaliseIp', () => {
  it('canonicalises IPv6 and rejects non-addresses', () => {
    expect(normaliseIp('2001:4860:4860:0:0:0:0:8888')).toBe('2001:4860:4860::8888');
    expect(normaliseIp(' 1.2.3.4 ')).toBe('1.2.3.4');
    expect(normaliseIp('1.2.3.4\nend')).toBeNull();
    expect(normaliseIp('example.com')).toBeNull();
  });
});
