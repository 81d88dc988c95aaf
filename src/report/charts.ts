/**
 * Charts rendered at report time as SVG strings (d3 scales and shapes compute every coordinate;
 * nothing runs in the page). Every mark carries class `mark` so a test can count them, and every
 * label goes through escapeHtml: sensor and AS names are text, never markup.
 */
import { scaleBand, scaleLinear, scaleOrdinal, scalePoint } from 'd3-scale';
import { schemeTableau10 } from 'd3-scale-chromatic';
import { arc, line, pie, stack, type PieArcDatum } from 'd3-shape';
import { escapeHtml as esc } from './render-text.js';
import type { DailyRow } from './views.js';

const W = 760;
const M = { top: 16, right: 16, bottom: 40, left: 56 };
const fmt = (n: number) => n.toLocaleString('en-US');
const r1 = (n: number) => Math.round(n * 10) / 10;

function frame(id: string, title: string, height: number, body: string, legend: string[] = []): string {
  return `<figure class="chart-box"><figcaption>${esc(title)}</figcaption>`
    + `<svg class="chart" data-chart="${id}" role="img" aria-label="${esc(title)}" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}">${body}</svg>`
    + (legend.length ? `<div class="legend">${legend.join('')}</div>` : '') + '</figure>';
}

const swatch = (color: string, label: string) => `<span class="key"><i style="background:${color}"></i>${esc(label)}</span>`;

function yAxis(y: (v: number) => number, ticks: number[], x0: number, x1: number): string {
  return ticks.map((t) => `<g class="tick"><line x1="${x0}" x2="${x1}" y1="${r1(y(t))}" y2="${r1(y(t))}"/><text x="${x0 - 6}" y="${r1(y(t)) + 4}" text-anchor="end">${fmt(t)}</text></g>`).join('');
}

function xLabels(days: string[], x: (d: string) => number, y: number): string {
  const every = Math.max(1, Math.ceil(days.length / 12));
  return days.filter((_, i) => i % every === 0).map((d) => `<text class="x" x="${r1(x(d))}" y="${y}" text-anchor="middle">${esc(d.slice(5))}</text>`).join('');
}

/** Sessions per day, stacked by sensor: one bar segment per (day, sensor) with sessions. */
export function sessionsPerDayChart(daily: DailyRow[]): string {
  const days = [...new Set(daily.map((d) => d.day))].sort();
  const sensors = [...new Set(daily.map((d) => d.sensor))].sort();
  const H = 280;
  const byDay = days.map((day) => {
    const row: Record<string, number> & { day?: never } = {} as Record<string, number>;
    for (const s of sensors) row[s] = 0;
    for (const d of daily) if (d.day === day) row[d.sensor] = d.sessions;
    return row;
  });
  const series = stack<Record<string, number>>().keys(sensors)(byDay);
  const max = Math.max(1, ...series.flatMap((s) => s.map((p) => p[1])));
  const x = scaleBand<string>().domain(days).range([M.left, W - M.right]).padding(0.15);
  const y = scaleLinear().domain([0, max]).nice().range([H - M.bottom, M.top]);
  const color = scaleOrdinal<string, string>().domain(sensors).range(schemeTableau10);
  let marks = '';
  series.forEach((s) => s.forEach((p, i) => {
    const v = p[1] - p[0];
    if (v <= 0) return;
    marks += `<rect class="mark" x="${r1(x(days[i])!)}" y="${r1(y(p[1]))}" width="${r1(x.bandwidth())}" height="${r1(y(p[0]) - y(p[1]))}" fill="${color(s.key)}">`
      + `<title>${esc(`${days[i]} ${s.key || '(no sensor)'}: ${fmt(v)} sessions`)}</title></rect>`;
  }));
  const body = yAxis(y, y.ticks(5), M.left, W - M.right) + marks + xLabels(days, (d) => x(d)! + x.bandwidth() / 2, H - M.bottom + 16);
  return frame('sessions-per-day', 'Sessions per day, by sensor', H, body, sensors.map((s) => swatch(color(s), s || '(no sensor)')));
}

export interface Bar { label: string; value: number; note?: string }

/** Horizontal bars (top ASNs, countries): one bar per row. */
export function barChart(id: string, title: string, bars: Bar[]): string {
  const rowH = 22;
  const labelW = 260;
  const H = M.top + Math.max(1, bars.length) * rowH + 24;
  const x = scaleLinear().domain([0, Math.max(1, ...bars.map((b) => b.value))]).nice().range([labelW, W - 80]);
  const y = scaleBand<number>().domain(bars.map((_, i) => i)).range([M.top, M.top + bars.length * rowH]).padding(0.2);
  const body = bars.map((b, i) => {
    const label = b.label.length > 40 ? `${b.label.slice(0, 39)}…` : b.label;
    return `<text class="label" x="${labelW - 8}" y="${r1(y(i)! + y.bandwidth() / 2 + 4)}" text-anchor="end">${esc(label)}</text>`
      + `<rect class="mark" x="${labelW}" y="${r1(y(i)!)}" width="${r1(Math.max(0, x(b.value) - labelW))}" height="${r1(y.bandwidth())}" fill="${schemeTableau10[0]}">`
      + `<title>${esc(`${b.label}: ${fmt(b.value)}${b.note ? ` (${b.note})` : ''}`)}</title></rect>`
      + `<text class="value" x="${r1(x(b.value) + 6)}" y="${r1(y(i)! + y.bandwidth() / 2 + 4)}">${fmt(b.value)}</text>`;
  }).join('');
  return frame(id, title, H, body);
}

/** GreyNoise classification mix of the window's IPs: one slice per classification. */
export function classificationChart(mix: Record<string, number>): string {
  const entries = Object.entries(mix).filter(([, n]) => n > 0);
  const H = 240;
  const color = scaleOrdinal<string, string>().domain(entries.map(([k]) => k)).range(schemeTableau10);
  const arcs = pie<[string, number]>().value((d) => d[1]).sort(null)(entries);
  const path = arc<PieArcDatum<[string, number]>>().innerRadius(50).outerRadius(100);
  const body = `<g transform="translate(${W / 2},${H / 2})">${arcs.map((a) => `<path class="mark" d="${path(a)}" fill="${color(a.data[0])}">`
    + `<title>${esc(`${a.data[0]}: ${fmt(a.data[1])} IPs`)}</title></path>`).join('')}</g>`;
  return frame('classification', 'GreyNoise classification of source IPs', H, body, entries.map(([k, n]) => swatch(color(k), `${k} (${fmt(n)})`)));
}

/** Per day: sessions that tried to log in, and sessions that got in. One point per day and series. */
export function loginChart(daily: DailyRow[]): string {
  const days = [...new Set(daily.map((d) => d.day))].sort();
  const sum = (day: string, f: (d: DailyRow) => number) => daily.filter((d) => d.day === day).reduce((a, d) => a + f(d), 0);
  const seriesDefs = [
    { name: 'sessions with login attempts', values: days.map((d) => sum(d, (r) => r.sessionsWithLogins)) },
    { name: 'sessions that logged in', values: days.map((d) => sum(d, (r) => r.sessionsLoggedIn)) },
  ];
  const H = 260;
  const x = scalePoint<string>().domain(days).range([M.left + 10, W - M.right - 10]);
  const y = scaleLinear().domain([0, Math.max(1, ...seriesDefs.flatMap((s) => s.values))]).nice().range([H - M.bottom, M.top]);
  const color = [schemeTableau10[0], schemeTableau10[2]];
  const body = yAxis(y, y.ticks(5), M.left, W - M.right) + seriesDefs.map((s, si) => {
    const pts = days.map((d, i) => [x(d)!, y(s.values[i])] as [number, number]);
    return `<path class="line" d="${line()(pts) ?? ''}" fill="none" stroke="${color[si]}" stroke-width="2"/>`
      + pts.map((p, i) => `<circle class="mark" cx="${r1(p[0])}" cy="${r1(p[1])}" r="3.5" fill="${color[si]}"><title>${esc(`${days[i]} ${s.name}: ${fmt(s.values[i])}`)}</title></circle>`).join('');
  }).join('') + xLabels(days, (d) => x(d)!, H - M.bottom + 16);
  return frame('logins', 'Logins per day', H, body, seriesDefs.map((s, i) => swatch(color[i], s.name)));
}
