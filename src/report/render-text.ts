/**
 * Plain-text formats of a view: a terminal table, RFC 4180 CSV, and each cell's text form.
 * Attacker text is hostile: control characters are shown as escapes in tables, and CSV cells that a
 * spreadsheet would run as a formula are defused.
 */
import { escapeControl } from '../text.js';
import type { Cell, Column, ViewTable } from './views.js';

/** A cell as text: mixes as `malicious 3, unknown 2`, shares as percentages, null as empty. */
export function cellText(c: Column, v: Cell): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return Object.entries(v).map(([k, n]) => `${k} ${n}`).join(', ');
  if (c.key.endsWith('share') && typeof v === 'number') return `${(v * 100).toFixed(1)}%`;
  return String(v);
}

/** Longest cell shown in a terminal table; the full text is in JSON and CSV. */
const MAX_CELL = 60;

export function renderTable(t: ViewTable, o: { color: boolean }): string {
  const head = t.columns.map((c) => c.key);
  const body = t.rows.map((r) => t.columns.map((c) => {
    const s = escapeControl(cellText(c, r[c.key]));
    return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL - 1)}…` : s;
  }));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((s, i) => (t.columns[i].numeric ? s.padStart(widths[i]) : s.padEnd(widths[i]))).join('  ').trimEnd();
  const bold = (s: string) => (o.color ? `\x1b[1m${s}\x1b[0m` : s);
  const out = [bold(t.title), line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)];
  if (!t.rows.length) out.push('(none)');
  return `${out.join('\n')}\n`;
}

// A spreadsheet runs a cell that starts with one of these as a formula (OWASP CSV injection).
const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV field: formula prefixes defused with a leading `'`, quoted when it holds `,` `"` CR or LF. */
export function csvField(text: string, numeric = false): string {
  let s = text;
  if (!numeric && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || s !== text ? `"${s.replaceAll('"', '""')}"` : s;
}

export function renderCsv(t: ViewTable): string {
  const lines = [t.columns.map((c) => csvField(c.key)).join(',')];
  for (const r of t.rows) {
    lines.push(t.columns.map((c) => {
      const v = r[c.key];
      if (typeof v === 'object' && v !== null) return csvField(Object.entries(v).map(([k, n]) => `${k}=${n}`).join(';'));
      return csvField(v === null || v === undefined ? '' : String(v), typeof v === 'number');
    }).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** Keys that `escapeHtml` replaces. */
const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for HTML element content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]);
}
