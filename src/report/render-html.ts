/**
 * The HTML report: one self-contained file. No script, no external resource, and a
 * Content-Security-Policy that forbids loading anything, so opening it makes no network request.
 */
import { barChart, classificationChart, loginChart, sessionsPerDayChart } from './charts.js';
import { cellText, escapeHtml as esc } from './render-text.js';
import type { DailyRow, ViewTable } from './views.js';
import type { ReportWindow } from './window.js';

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#666}table{border-collapse:collapse;margin:.5rem 0;font-size:13px}
th,td{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:left;vertical-align:top;max-width:420px;overflow-wrap:anywhere}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.chart-box{margin:1rem 0}figcaption{font-weight:600;margin-bottom:.3rem}
svg.chart{max-width:100%;height:auto;font-size:11px}svg .tick line{stroke:#eee}svg text{fill:#444}
.legend{display:flex;flex-wrap:wrap;gap:.8rem;font-size:12px}.key i{display:inline-block;width:10px;height:10px;margin-right:4px}
.charts{display:grid;grid-template-columns:1fr;gap:1rem}.up{color:#b00}.down{color:#070}
`;

export function renderTableHtml(t: ViewTable): string {
  const head = t.columns.map((c) => `<th${c.numeric ? ' class="num"' : ''}>${esc(c.key)}</th>`).join('');
  const rows = t.rows.map((r) => `<tr>${t.columns.map((c) => `<td${c.numeric ? ' class="num"' : ''}>${esc(cellText(c, r[c.key]))}</td>`).join('')}</tr>`).join('\n');
  return `<section data-view="${t.view}"><h2>${esc(t.title)}</h2><table><thead><tr>${head}</tr></thead><tbody>\n${rows || `<tr><td colspan="${t.columns.length}">none</td></tr>`}\n</tbody></table></section>`;
}

export interface HtmlReport {
  window: ReportWindow;
  generatedAt: string;
  tables: ViewTable[];
  daily: DailyRow[] | null;
  mix: Record<string, number> | null;
}

/** Charts go before the tables they illustrate; every table of the report follows. */
export function renderHtml(r: HtmlReport): string {
  const charts: string[] = [];
  if (r.daily) charts.push(sessionsPerDayChart(r.daily), loginChart(r.daily));
  const asns = r.tables.find((t) => t.view === 'asns');
  if (asns) {
    charts.push(barChart('asns', 'Top ASNs by sessions', asns.rows.map((a) => ({
      label: `${a.asn === null ? 'unknown AS' : `AS${a.asn}`} ${a.name ?? ''}`.trim(), value: Number(a.sessions), note: cellText({ key: 'share' }, a.share),
    }))));
  }
  const countries = r.tables.find((t) => t.view === 'countries');
  if (countries) {
    charts.push(barChart('countries', 'Countries by sessions', countries.rows.map((c) => ({
      label: String(c.country ?? 'unknown'), value: Number(c.sessions), note: cellText({ key: 'share' }, c.share),
    }))));
  }
  if (r.mix) charts.push(classificationChart(r.mix));
  const w = r.window;
  const scope = w.sensors.length ? `sensors ${w.sensors.join(', ')}` : 'all sensors';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cowrie report ${esc(w.since.slice(0, 10))} to ${esc(w.until.slice(0, 10))}</title>
<style>${CSS}</style></head><body>
<h1>Cowrie honeypot report</h1>
<p class="meta">Sessions whose first event is between ${esc(w.since)} and ${esc(w.until)} (${esc(scope)}). Generated ${esc(r.generatedAt)} by cowrie-report.</p>
<div class="charts">${charts.join('\n')}</div>
${r.tables.map(renderTableHtml).join('\n')}
</body></html>
`;
}
