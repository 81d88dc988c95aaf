import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicIp } from '../../src/enrich/ip-scope.js';
import { readCommands, readCredentials, readDaily } from '../../src/report/data.js';
import { checkViewFormat, runReport, type ReportOptions } from '../../src/report/report.js';
import { VIEWS, type ViewName } from '../../src/report/views.js';
import { openStore, type Store } from '../../src/store/store.js';
import { dialectCases } from '../helpers/dialects.js';
import { buildFixture, HOSTILE, HOSTILE_ASN, sessionsOf, tally, type Fixture } from './fixture.js';
import { checkCsv, checkHtml, checkMisp, checkStix, checkTable, parseCsv } from './format-checks.js';

const CENTURY = 100 * 365 * 86_400_000;
const ALL = { since: '2000-01-01', until: '2100-01-01' };
const FORMATS: Record<ViewName, string[]> = {
  summary: ['table', 'json', 'html'], blocklist: ['plain', 'csv', 'json', 'nft', 'ipset', 'stix', 'misp'], files: ['table', 'json', 'csv', 'html', 'stix', 'misp'],
  totals: [], new: [], asns: [], countries: [], ips: [], credentials: [], commands: [], coverage: [],
};
for (const v of VIEWS) if (!FORMATS[v].length) FORMATS[v] = ['table', 'json', 'csv', 'html'];

const base = (view: ViewName, format: string, extra: Partial<ReportOptions> = {}): ReportOptions => ({
  view, format, ...ALL, limit: 1000, ips: {}, blocklist: { scanners: 'include', maxAgeMs: CENTURY }, setName: 'cowrie_blocklist', color: false,
  now: new Date('2024-01-05T00:00:00Z'), ...extra,
});

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] cowrie-report views`, () => {
    let fx: Fixture;
    let store: Store;
    const report = async (view: ViewName, format: string, extra: Partial<ReportOptions> = {}) => (await runReport(store.db, base(view, format, extra))).text;
    const json = async (view: ViewName, extra: Partial<ReportOptions> = {}) => JSON.parse(await report(view, 'json', extra));

    beforeAll(async () => {
      const url = await d.newUrl();
      fx = await buildFixture(url);
      store = await openStore(url);
    }, 120_000);
    afterAll(async () => {
      await store?.close();
    });

    it('totals agree with the raw events, and previous/change cover the window before', async () => {
      const sessions = [...sessionsOf(fx.events).values()];
      const r = await json('totals');
      expect(r.totals.current).toEqual({
        events: fx.events.length, sessions: sessions.length, source_ips: new Set(sessions.map((s) => s.ip)).size,
        sensors: new Set(sessions.map((s) => s.sensor)).size, login_attempts: sessions.reduce((a, s) => a + s.logins, 0),
        successful_logins: sessions.reduce((a, s) => a + s.successes, 0), commands: sessions.reduce((a, s) => a + s.commands, 0),
        downloads: sessions.reduce((a, s) => a + s.downloads.size, 0),
      });
      // Day 2 only: sessions belong to the day of their first event; previous = day 1.
      const day = (d: string) => sessions.filter((s) => s.first.startsWith(d));
      const r2 = await json('totals', { since: '2024-01-02', until: '2024-01-02' });
      expect(r2.totals.current.sessions).toBe(day('2024-01-02').length);
      expect(r2.totals.previous.sessions).toBe(day('2024-01-01').length);
      expect(r2.totals.change.sessions).toBe(day('2024-01-02').length - day('2024-01-01').length);
      expect(r2.window).toEqual({ since: '2024-01-02T00:00:00.000000Z', until: '2024-01-02T23:59:59.999999Z', sensors: [] });
    });

    it('windows whose edges fall inside a day: totals, per-day rows and top lists are exact', async () => {
      const sessions = [...sessionsOf(fx.events).values()];
      const sessionOf = new Map(sessions.map((s) => [s.id, s]));
      // Early and late edges (read as whole days less the outside part, or as the inside part),
      // one short and one long single-day window.
      const windows = [
        ['2024-01-01T03:17:00.000001Z', '2024-01-02T20:00:00.5Z'],
        ['2024-01-01T20:00:00Z', '2024-01-03T03:00:00Z'],
        ['2024-01-02T10:00:00Z', '2024-01-02T13:30:00Z'],
        ['2024-01-02T01:00:00Z', '2024-01-02T23:00:00Z'],
      ];
      for (const [since, until] of windows) {
        const r = await runReport(store.db, base('totals', 'json', { since, until }));
        const w = r.window;
        const mine = sessions.filter((s) => s.first >= w.since && s.first <= w.until);
        const ids = new Set(mine.map((s) => s.id));
        expect(JSON.parse(r.text).totals.current).toEqual({
          events: mine.reduce((a, s) => a + s.events, 0), sessions: mine.length, source_ips: new Set(mine.map((s) => s.ip)).size,
          sensors: new Set(mine.map((s) => s.sensor)).size, login_attempts: mine.reduce((a, s) => a + s.logins, 0),
          successful_logins: mine.reduce((a, s) => a + s.successes, 0), commands: mine.reduce((a, s) => a + s.commands, 0),
          downloads: mine.reduce((a, s) => a + s.downloads.size, 0),
        });
        const days = new Map<string, { sessions: number; sessionsWithLogins: number; sessionsLoggedIn: number }>();
        for (const s of mine) {
          const k = `${s.first.slice(0, 10)} ${s.sensor}`;
          const v = days.get(k) ?? { sessions: 0, sessionsWithLogins: 0, sessionsLoggedIn: 0 };
          v.sessions++;
          if (s.logins > 0) v.sessionsWithLogins++;
          if (s.successes > 0) v.sessionsLoggedIn++;
          days.set(k, v);
        }
        expect((await readDaily(store.db, w)).map(({ day, sensor, ...v }) => [`${day} ${sensor}`, v])).toEqual([...days].sort(([a], [b]) => (a < b ? -1 : 1)));
        const events = fx.events.filter((e) => ids.has(e.session));
        const logins = events.filter((e) => e.eventid === 'cowrie.login.success' || e.eventid === 'cowrie.login.failed');
        const cmds = events.filter((e) => e.eventid === 'cowrie.command.input');
        // The bounded scan and the full pass over the rollups (scanLimit 1) give the same list.
        for (const scanLimit of [undefined, 1]) {
          const creds = await readCredentials(store.db, w, 1000, { scanLimit });
          expect(creds.map((c) => c.attempts)).toEqual(tally(logins, (e) => JSON.stringify([e.username, e.password])).map(([, n]) => n));
          for (const c of creds.slice(0, 5)) {
            const these = logins.filter((e) => e.username === c.username && e.password === c.password);
            expect(c).toMatchObject({ attempts: these.length, successes: these.filter((e) => e.eventid === 'cowrie.login.success').length, ips: new Set(these.map((e) => e.src_ip)).size });
          }
          const top = await readCommands(store.db, w, 3, { scanLimit });
          expect(top.map((c) => c.count)).toEqual(tally(cmds, (e) => e.input!).slice(0, 3).map(([, n]) => n));
          for (const c of top) {
            const these = cmds.filter((e) => e.input === c.command);
            expect(c).toMatchObject({ sessions: new Set(these.map((e) => e.session)).size, ips: new Set(these.map((e) => sessionOf.get(e.session)!.ip)).size });
          }
        }
      }
    });

    it('by default the window is the 7 days before the newest event', async () => {
      const r = await runReport(store.db, { ...base('totals', 'json'), since: undefined, until: undefined });
      const newest = fx.events.map((e) => e.timestamp).sort().at(-1)!;
      expect(r.window.until).toBe(newest);
      expect(Date.parse(r.window.until) - Date.parse(r.window.since)).toBe(7 * 86_400_000);
    });

    it('credentials and commands: top lists computed from the events', async () => {
      const logins = fx.events.filter((e) => e.eventid === 'cowrie.login.success' || e.eventid === 'cowrie.login.failed');
      const expected = tally(logins, (e) => JSON.stringify([e.username, e.password]));
      const got = (await json('credentials', { limit: 5 })).credentials as Array<Record<string, unknown>>;
      expect(got.map((c) => c.attempts)).toEqual(expected.slice(0, 5).map(([, n]) => n));
      for (const c of got) {
        const mine = logins.filter((e) => e.username === c.username && e.password === c.password);
        expect(c.attempts).toBe(mine.length);
        expect(c.successes).toBe(mine.filter((e) => e.eventid === 'cowrie.login.success').length);
        expect(c.ips).toBe(new Set(mine.map((e) => e.src_ip)).size);
      }
      const cmds = fx.events.filter((e) => e.eventid === 'cowrie.command.input');
      const all = (await json('commands')).commands as Array<Record<string, unknown>>;
      expect(all.map((c) => c.count)).toEqual(tally(cmds, (e) => e.input!).map(([, n]) => n));
      const hostile = all.find((c) => c.command === HOSTILE.command)!;
      expect(hostile).toMatchObject({ count: 1, sessions: 1, ips: 1 });
    });

    it('asns, countries and ips: sessions per network from the chosen enrichment', async () => {
      const sessions = [...sessionsOf(fx.events).values()];
      const byAsn = tally(sessions, (s) => String(fx.ipFacts.get(s.ip)!.asn));
      const asns = (await json('asns')).asns as Array<Record<string, unknown>>;
      expect(asns.map((a) => [String(a.asn), a.sessions])).toEqual(expect.arrayContaining(byAsn));
      expect(asns.map((a) => a.sessions)).toEqual(byAsn.map(([, n]) => n));
      const hostileAsn = asns.find((a) => a.asn === HOSTILE_ASN)!;
      expect(hostileAsn).toMatchObject({ name: HOSTILE.asName, ips: 1, sessions: 1, classification: { malicious: 1 } });
      const countries = (await json('countries')).countries as Array<Record<string, unknown>>;
      expect(countries.map((c) => c.sessions)).toEqual(tally(sessions, (s) => fx.ipFacts.get(s.ip)!.country).map(([, n]) => n));
      expect(countries.reduce((a, c) => a + (c.share as number), 0)).toBeCloseTo(1, 2);
      const ips = (await json('ips')).ips as Array<Record<string, unknown>>;
      expect(ips.map((i) => i.sessions)).toEqual(tally(sessions, (s) => s.ip).map(([, n]) => n));
      const malicious = (await json('ips', { ips: { classification: 'malicious' } })).ips as Array<Record<string, unknown>>;
      expect(malicious.map((i) => i.ip).sort()).toEqual([...fx.ipFacts].filter(([, f]) => f.classification === 'malicious').map(([ip]) => ip).sort());
      const busy = (await json('ips', { ips: { minSessions: 3 } })).ips as Array<Record<string, unknown>>;
      expect(busy.length).toBe(tally(sessions, (s) => s.ip).filter(([, n]) => n >= 3).length);
      // New: never seen before the window. Day 3: IPs whose first session is on day 3.
      const firstDay = new Map<string, string>();
      for (const s of sessions) if (!firstDay.has(s.ip) || s.first < firstDay.get(s.ip)!) firstDay.set(s.ip, s.first);
      const fresh = (await json('ips', { since: '2024-01-03', until: '2024-01-03', ips: { newOnly: true } })).ips as Array<Record<string, unknown>>;
      expect(fresh.map((i) => i.ip).sort()).toEqual([...firstDay].filter(([, t]) => t.startsWith('2024-01-03')).map(([ip]) => ip).sort());
    });

    it('asns and ips: classification mix per ASN, sensors and classification of the listed IPs', async () => {
      const sessions = [...sessionsOf(fx.events).values()];
      const classOf = (ip: string) => {
        const f = fx.ipFacts.get(ip)!;
        return f.classification ?? (f.observed ? 'not_observed' : 'unenriched');
      };
      const ipsOf = new Map<number, Set<string>>();
      for (const s of sessions) {
        const asn = fx.ipFacts.get(s.ip)!.asn;
        ipsOf.set(asn, (ipsOf.get(asn) ?? new Set()).add(s.ip));
      }
      const asns = (await json('asns')).asns as Array<Record<string, unknown>>;
      expect(asns.length).toBe(ipsOf.size);
      for (const a of asns) {
        const mine = [...ipsOf.get(a.asn as number)!];
        expect(a.ips).toBe(mine.length);
        expect(a.classification).toEqual(Object.fromEntries(tally(mine, classOf)));
      }
      const ips = (await json('ips', { limit: 5 })).ips as Array<Record<string, unknown>>;
      const bySessions = tally(sessions, (s) => s.ip);
      expect(ips.map((i) => i.sessions)).toEqual(bySessions.slice(0, 5).map(([, n]) => n));
      for (const i of ips) {
        const mine = sessions.filter((s) => s.ip === i.ip);
        expect(i).toMatchObject({
          sensors: new Set(mine.map((s) => s.sensor)).size, classification: classOf(i.ip as string), asn: fx.ipFacts.get(i.ip as string)!.asn,
          first_seen: mine.map((s) => s.first).sort()[0],
        });
      }
    });

    it('new: IPs and ASNs never seen before the window, earliest first', async () => {
      const firstEvent = new Map<string, string>();
      for (const e of fx.events) if (!firstEvent.has(e.src_ip) || e.timestamp < firstEvent.get(e.src_ip)!) firstEvent.set(e.src_ip, e.timestamp);
      const sessions = [...sessionsOf(fx.events).values()];
      const asnFirst = new Map<number, string>();
      for (const [ip, t] of firstEvent) {
        const asn = fx.ipFacts.get(ip)!.asn;
        if (!asnFirst.has(asn) || t < asnFirst.get(asn)!) asnFirst.set(asn, t);
      }
      let asnsSeen = 0;
      for (const [from, to] of [['2024-01-03', '2024-01-03'], ['2024-01-02', '2024-01-03']]) {
        const since = `${from}T00:00:00.000000Z`;
        const end = `${to}T23:59:59.999999Z`;
        const inWindow = new Set(sessions.filter((s) => s.first >= since && s.first <= end).map((s) => s.ip));
        const r = (await json('new', { since: from, until: to, limit: 10_000 })).new as Array<Record<string, unknown>>;
        const freshIps = [...inWindow].filter((ip) => firstEvent.get(ip)! >= since)
          .sort((a, b) => firstEvent.get(a)!.localeCompare(firstEvent.get(b)!) || (a < b ? -1 : 1));
        expect(freshIps.length).toBeGreaterThan(2);
        expect(r.filter((x) => x.kind === 'ip').map((x) => [x.value, x.first_seen])).toEqual(freshIps.map((ip) => [ip, firstEvent.get(ip)]));
        const freshAsns = [...new Set([...inWindow].map((ip) => fx.ipFacts.get(ip)!.asn))].filter((a) => asnFirst.get(a)! >= since);
        asnsSeen += freshAsns.length;
        expect(r.filter((x) => x.kind === 'asn').map((x) => [x.value, x.first_seen, x.detail]).sort())
          .toEqual(freshAsns.map((a) => [`AS${a}`, asnFirst.get(a), fx.asnNames.get(a)]).sort());
        // With a limit, the earliest ones.
        const two = (await json('new', { since: from, until: to, limit: 2 })).new as Array<Record<string, unknown>>;
        expect(two.filter((x) => x.kind === 'ip').map((x) => x.value)).toEqual(freshIps.slice(0, 2));
      }
      // The hostile session's ASN is first seen on day 2.
      expect(asnsSeen).toBeGreaterThan(0);
    });

    it('new: passwords and commands first seen in the window, per sensor when asked', async () => {
      const first = (kind: 'password' | 'input') => {
        const m = new Map<string, string>();
        for (const e of fx.events) {
          const v = e[kind];
          if (v === undefined || (kind === 'password' && !e.eventid.startsWith('cowrie.login.'))) continue;
          if (!m.has(v) || e.timestamp < m.get(v)!) m.set(v, e.timestamp);
        }
        return m;
      };
      const r = (await json('new', { since: '2024-01-02', until: '2024-01-03', limit: 10_000 })).new as Array<Record<string, unknown>>;
      const inWindow = (t: string) => t >= '2024-01-02' && t < '2024-01-04';
      expect(r.filter((x) => x.kind === 'password').map((x) => x.value).sort()).toEqual([...first('password')].filter(([, t]) => inWindow(t)).map(([v]) => v).sort());
      expect(r.filter((x) => x.kind === 'command').map((x) => x.value).sort()).toEqual([...first('input')].filter(([, t]) => inWindow(t)).map(([v]) => v).sort());
      expect(r.some((x) => x.kind === 'file' && x.value === HOSTILE.hash)).toBe(true);
      // Sensor filter: only values that appeared on that sensor in the window.
      const other = (await json('new', { since: '2024-01-02', until: '2024-01-03', limit: 10_000, sensors: ['no-such-sensor'] })).new as unknown[];
      expect(other).toEqual([]);
    });

    it('files and coverage: per hash sessions, VirusTotal verdicts, answered shares', async () => {
      const downloads = [...sessionsOf(fx.events).values()].flatMap((s) => [...s.downloads]);
      const files = (await json('files')).files as Array<Record<string, unknown>>;
      expect(files.map((f) => f.sessions)).toEqual(tally(downloads, (s) => s).map(([, n]) => n));
      for (const f of files) {
        const v = fx.vt.get(f.sha256 as string)!;
        expect(f.status).toBe(v.status);
        expect(f.vt_malicious).toBe(v.malicious);
        if (v.status === 'enriched') expect(f.vt_total).toBe(v.malicious! + 63);
      }
      const cov = (await json('coverage')).coverage as Array<Record<string, unknown>>;
      const publicIps = [...fx.ipFacts.keys()].filter(isPublicIp);
      expect(cov.find((c) => c.source === 'maxmind')).toMatchObject({ items: publicIps.length, answered: publicIps.length, answered_share: 1, database_build: 'City 2024-01-01, ASN 2024-01-01' });
      expect(cov.find((c) => c.source === 'greynoise')!.answered).toBe(publicIps.filter((ip) => fx.ipFacts.get(ip)!.observed).length);
      const vt = cov.find((c) => c.source === 'virustotal')!;
      expect(vt).toMatchObject({ items: fx.vt.size, pending: [...fx.vt.values()].filter((v) => v.status === 'pending').length, failed: 0 });
      // Cymru never answered, but no IP waits for it (MaxMind had every ASN): not quiet.
      expect(cov.find((c) => c.source === 'cymru')).toMatchObject({ answered: 0, quiet: false });
    });

    it('blocklist: public IPs only, never benign or RIOT; filters and every feed format', async () => {
      const sessions = [...sessionsOf(fx.events).values()];
      const perIp = new Map(tally(sessions, (s) => s.ip));
      const expected = [...fx.ipFacts].filter(([ip, f]) => isPublicIp(ip) && f.classification !== 'benign' && !f.riot).map(([ip]) => ip).sort();
      const plain = (await report('blocklist', 'plain')).trim().split('\n');
      expect([...plain].sort()).toEqual(expected);
      expect(plain).not.toContain(HOSTILE.privateIp);
      const noScanners = (await report('blocklist', 'plain', { blocklist: { scanners: 'exclude', maxAgeMs: CENTURY } })).trim().split('\n');
      expect(noScanners.sort()).toEqual(expected.filter((ip) => !fx.ipFacts.get(ip)!.noise));
      const busy = (await report('blocklist', 'plain', { blocklist: { scanners: 'include', minSessions: 3, maxAgeMs: CENTURY } })).trim().split('\n');
      expect(busy.sort()).toEqual(expected.filter((ip) => perIp.get(ip)! >= 3));
      const nft = await report('blocklist', 'nft');
      for (const ip of expected) expect(nft).toContain(`\t\t\t${ip}`);
      expect(nft).toMatch(/table inet cowrie_report \{\n\tset cowrie_blocklist_v4 \{\n\t\ttype ipv4_addr\n\t\telements = \{/);
      const ipset = (await report('blocklist', 'ipset')).split('\n').filter((l) => l.startsWith('add '));
      expect(ipset.length).toBe(expected.length);
      const stix = JSON.parse(await report('blocklist', 'stix'));
      checkStix(stix, expected.length, /^\[ipv[46]-addr:value = '[0-9a-f.:]+'\]$/);
      const misp = JSON.parse(await report('blocklist', 'misp'));
      checkMisp(misp, expected.length, 'ip-src');
      const reasons = (await json('blocklist')).blocklist as Array<Record<string, unknown>>;
      expect(reasons.find((r) => r.ip === HOSTILE.ip)).toMatchObject({ sessions: 1, sensors: 1, classification: 'malicious', asn: HOSTILE_ASN, as_name: HOSTILE.asName });
    });

    it('files --format stix|misp: hashes VirusTotal flags or has never seen', async () => {
      const wanted = [...fx.vt].filter(([, v]) => v.status === 'unknown' || (v.malicious ?? 0) > 0).map(([sha]) => sha);
      checkStix(JSON.parse(await report('files', 'stix')), wanted.length, /^\[file:hashes\.'SHA-256' = '[0-9a-f]{64}'\]$/);
      checkMisp(JSON.parse(await report('files', 'misp')), wanted.length, 'sha256');
    });

    it('every view in every allowed format renders, attacker text inert', async () => {
      for (const view of VIEWS) {
        for (const format of FORMATS[view]) {
          expect(checkViewFormat(view, format)).toEqual({ view, format });
          const text = await report(view, format);
          if (format === 'json') expect(JSON.parse(text).schema_version).toBe(1);
          if (format === 'table') checkTable(text);
          if (format === 'csv') checkCsv(text);
          if (format === 'html') checkHtml(text);
        }
      }
      const creds = parseCsv(await report('credentials', 'csv'));
      expect(creds[0]).toEqual(['username', 'password', 'attempts', 'successes', 'ips']);
      const row = creds.find((r) => r[0] === HOSTILE.username)!;
      expect(row[1]).toBe(`'${HOSTILE.password}`);
      const table = await report('commands', 'table');
      expect(table).toContain('\\x1b[31mred\\x1b]0;owned\\x07');
      const html = await report('summary', 'html');
      expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
      expect(html).toContain('&lt;script&gt;alert(&quot;u&quot;)&lt;/script&gt;');
    });
  });
}
