/**
 * `cowrie-report VIEW`: reads what the view needs for the window and renders it in one format.
 * Returns the text; the CLI decides where it goes.
 */
import { UsageError } from '../errors.js';
import { escapeControl } from '../text.js';
import { BLOCKLIST_COLUMNS, blocklistRow, renderIpset, renderNft, renderPlain, selectBlocklist, selectFileFeed, type BlocklistOptions } from './blocklist.js';
import {
  readAsns, readCommands, readCredentials, readDaily, readFiles, readIpStats, readIpSummary, readNewValues, readTotals, type AsnInfo, type IpStat, type IpSummary, type ReportDb,
} from './data.js';
import { fileMisp, fileStix, ipMisp, ipStix } from './feeds.js';
import { renderCsv, renderTable } from './render-text.js';
import {
  asnsTable, classificationMix, commandsTable, countriesTable, coverageTable, credentialsTable, filesTable, ipsTable, newTable, totalsJson, totalsTable,
  SUMMARY_VIEWS, topAsns, VIEWS, type IpFilter, type TableView, type ViewName, type ViewTable,
} from './views.js';
import { previousWindow, resolveWindow, type ReportWindow } from './window.js';

export const SCHEMA_VERSION = 1;

const TABLE_FORMATS = ['table', 'json', 'csv', 'html'];
const FORMATS: Record<ViewName, string[]> = {
  summary: ['table', 'json', 'html'],
  blocklist: ['plain', 'csv', 'json', 'nft', 'ipset', 'stix', 'misp'],
  files: [...TABLE_FORMATS, 'stix', 'misp'],
  totals: TABLE_FORMATS, new: TABLE_FORMATS, asns: TABLE_FORMATS, countries: TABLE_FORMATS, ips: TABLE_FORMATS,
  credentials: TABLE_FORMATS, commands: TABLE_FORMATS, coverage: TABLE_FORMATS,
};

/** The view name and format, checked before any database is opened; returns the format to use. */
export function checkViewFormat(view: string, format: string | undefined): { view: ViewName; format: string } {
  if (!(VIEWS as readonly string[]).includes(view)) throw new UsageError(`unknown view ${JSON.stringify(view.slice(0, 40))}: expected one of ${VIEWS.join(', ')}`);
  const v = view as ViewName;
  const f = format ?? (v === 'blocklist' ? 'plain' : 'table');
  if (v === 'summary' && f === 'csv') throw new UsageError('summary --format csv: CSV holds one view per file; ask for one view (e.g. cowrie-report asns --format csv) or use --format json');
  if (!FORMATS[v].includes(f)) throw new UsageError(`${v} --format ${JSON.stringify(f.slice(0, 20))}: expected one of ${FORMATS[v].join(', ')}`);
  return { view: v, format: f };
}

export interface ReportOptions {
  view: ViewName;
  format: string;
  since?: string;
  until?: string;
  sensors?: string[];
  limit: number;
  ips: IpFilter;
  blocklist: BlocklistOptions;
  setName: string;
  color: boolean;
  now?: Date;
}

export interface ReportOutput {
  text: string;
  window: ReportWindow;
}

export async function runReport(db: ReportDb, o: ReportOptions): Promise<ReportOutput> {
  const now = o.now ?? new Date();
  const w = await resolveWindow(db, { since: o.since, until: o.until, sensors: o.sensors, now });
  const v = o.view;
  const wants = (...names: ViewName[]) => names.includes(v) || (v === 'summary');
  const fileFeed = v === 'files' && (o.format === 'stix' || o.format === 'misp');

  const summary = v === 'summary';
  // Independent reads run together (each on its own pooled connection on PostgreSQL).
  // The blocklist needs every IP of the window; the other views only sums and the listed IPs.
  const blocklist = v === 'blocklist';
  const wantsIps = !blocklist && wants('asns', 'countries', 'ips', 'new', 'coverage');
  const [[ips, asns], ipSummary, files, credentials, totalsNow, totalsBefore, newPasswords, newCommands, commands, daily] = await Promise.all([
    (blocklist ? readIpStats(db, w) : Promise.resolve([] as IpStat[])).then(async (list): Promise<[IpStat[], Map<number, AsnInfo>]> => {
      const asnIds = [...new Set(list.map((ip) => ip.asn).filter((a): a is number => a !== null))];
      return [list, blocklist ? await readAsns(db, asnIds) : new Map()];
    }),
    wantsIps
      ? readIpSummary(db, w, { limit: o.limit, filter: v === 'ips' ? o.ips : {} }).then(async (s): Promise<[IpSummary, Map<number, AsnInfo>]> => {
        const listed = [...new Set([...topAsns(s.byAsn, o.limit), ...s.freshAsns.slice(0, o.limit).map((a) => a.asn)])];
        return [s, await readAsns(db, listed)];
      })
      : null,
    wants('files', 'new', 'coverage') ? readFiles(db, w) : [],
    wants('credentials') ? readCredentials(db, w, o.limit) : [],
    // A summary has grouped the window by IP already: its distinct IPs come from there.
    wants('totals') ? readTotals(db, w, { countIps: !summary }) : null,
    wants('totals') ? readTotals(db, previousWindow(w)) : null,
    wants('new') ? readNewValues(db, w, 'password') : [],
    wants('new') ? readNewValues(db, w, 'command') : [],
    wants('commands') ? readCommands(db, w, o.limit) : [],
    summary && o.format === 'html' ? readDaily(db, w) : null,
  ]);
  const windowText = `${w.since} to ${w.until}`;

  if (v === 'blocklist') {
    const entries = selectBlocklist(ips, asns, w.until, o.blocklist);
    const header = `cowrie-report blocklist: ${entries.length} address(es), sessions from ${windowText}`;
    switch (o.format) {
      case 'plain': return { text: renderPlain(entries), window: w };
      case 'nft': return { text: renderNft(entries, o.setName, header), window: w };
      case 'ipset': return { text: renderIpset(entries, o.setName, header), window: w };
      case 'stix': return { text: ipStix(entries, o.blocklist.maxAgeMs, now), window: w };
      case 'misp': return { text: ipMisp(entries, windowText, now), window: w };
      case 'csv': return { text: renderCsv({ view: 'ips', title: '', columns: BLOCKLIST_COLUMNS, rows: entries.map(blocklistRow) }), window: w };
      default: return { text: json(w, now, { blocklist: entries.map(blocklistRow) }), window: w };
    }
  }
  if (fileFeed) {
    const feed = selectFileFeed(files);
    return { text: o.format === 'stix' ? fileStix(feed, o.blocklist.maxAgeMs, now) : fileMisp(feed, windowText, now), window: w };
  }

  const [ipSums, asnInfo] = ipSummary ?? [null, new Map<number, AsnInfo>()];
  if (totalsNow && summary) totalsNow.source_ips = ipSums!.ips;
  const tables: ViewTable[] = [];
  let totals: ReturnType<typeof totalsJson> | null = null;
  const totalSessions = ipSums?.sessions ?? 0;
  const selected: readonly TableView[] = summary ? SUMMARY_VIEWS : [v];
  for (const name of selected) {
    switch (name) {
      case 'totals':
        totals = totalsJson(totalsNow!, totalsBefore!);
        tables.push(totalsTable(totalsNow!, totalsBefore!));
        break;
      case 'new': tables.push(newTable({ ips: ipSums!.fresh, asns: ipSums!.freshAsns, asnInfo, passwords: newPasswords, commands: newCommands, files, w, limit: o.limit })); break;
      case 'asns': tables.push(asnsTable(ipSums!.byAsn, asnInfo, totalSessions, o.limit)); break;
      case 'countries': tables.push(countriesTable(ipSums!.byCountry, totalSessions, o.limit)); break;
      case 'ips': tables.push(ipsTable(ipSums!.top, w, now)); break;
      case 'credentials': tables.push(credentialsTable(credentials)); break;
      case 'commands': tables.push(commandsTable(commands)); break;
      case 'files': tables.push(filesTable(files, o.limit)); break;
      case 'coverage': tables.push(coverageTable(ipSums!.coverage, files, now)); break;
    }
  }

  switch (o.format) {
    case 'json': {
      const body: Record<string, unknown> = {};
      for (const t of tables) body[t.view] = t.view === 'totals' ? totals : t.rows;
      return { text: json(w, now, body), window: w };
    }
    case 'csv': return { text: renderCsv(tables[0]), window: w };
    case 'html': {
      // Loaded only for HTML: the chart modules are most of the report's start-up.
      const { renderHtml } = await import('./render-html.js');
      return {
        text: renderHtml({ window: w, generatedAt: now.toISOString(), tables, daily, mix: summary ? classificationMix(ipSums!.byAsn) : null }),
        window: w,
      };
    }
    default: {
      const head = `Sessions from ${w.since} to ${w.until}${w.sensors.length ? ` on ${escapeControl(w.sensors.join(', '))}` : ''}\n\n`;
      return { text: head + tables.map((t) => renderTable(t, { color: o.color })).join('\n'), window: w };
    }
  }
}

function json(w: ReportWindow, now: Date, body: Record<string, unknown>): string {
  return `${JSON.stringify({ schema_version: SCHEMA_VERSION, generated_at: now.toISOString(), window: { since: w.since, until: w.until, sensors: w.sensors }, ...body }, null, 2)}\n`;
}
