/** Shape checks shared by the report tests: each format parses, and attacker text stays inert. */
import { expect } from 'vitest';

/** RFC 4180: fields split on commas, quoted fields may hold commas, quotes ("") and line breaks. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') quoted = false; else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { row.push(field); field = ''; } else if (ch === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++; } else field += ch;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

/** No cell a spreadsheet would run as a formula; every row as wide as the header. */
export function checkCsv(text: string): void {
  const rows = parseCsv(text);
  expect(rows.length).toBeGreaterThan(0);
  for (const r of rows) {
    expect(r.length).toBe(rows[0].length);
    for (const cell of r) if (/^[=+@\t\r]/.test(cell) || (/^-/.test(cell) && !/^-\d+(\.\d+)?$/.test(cell))) throw new Error(`formula-like CSV cell: ${cell}`);
  }
}

/** No terminal control characters (ESC, BEL, C1, bidi overrides) reach the terminal. */
export function checkTable(text: string): void {
  // eslint-disable-next-line no-control-regex
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
}

/** No script, no external resource, no markup made of attacker text. */
export function checkHtml(text: string): void {
  expect(text.startsWith('<!DOCTYPE html>')).toBe(true);
  // Nothing that loads or runs: URLs in attacker text are escaped content, never attributes.
  expect(text).not.toMatch(/<script|<img|<b>|<a |<link|<iframe|<[a-z]+[^>]*\s(src|href)=|url\(|@import/i);
  expect(text).toContain("Content-Security-Policy\" content=\"default-src 'none'");
}

const STIX_ID = (type: string) => new RegExp(`^${type}--[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** STIX 2.1: bundle, identity and indicators with every required property, well-formed. */
export function checkStix(bundle: Record<string, any>, indicators: number, pattern: RegExp): void {
  expect(bundle.type).toBe('bundle');
  expect(bundle.id).toMatch(STIX_ID('bundle'));
  expect(bundle).not.toHaveProperty('spec_version');
  const identity = bundle.objects.filter((o: any) => o.type === 'identity');
  expect(identity).toHaveLength(1);
  expect(identity[0]).toMatchObject({ spec_version: '2.1', name: expect.any(String), identity_class: 'system' });
  const ind = bundle.objects.filter((o: any) => o.type === 'indicator');
  expect(ind).toHaveLength(indicators);
  for (const o of bundle.objects) {
    expect(o.spec_version).toBe('2.1');
    expect(o.id).toMatch(STIX_ID(o.type));
    expect(o.created).toMatch(RFC3339);
    expect(o.modified).toMatch(RFC3339);
  }
  for (const i of ind) {
    expect(i.pattern).toMatch(pattern);
    expect(i.pattern_type).toBe('stix');
    expect(i.valid_from).toMatch(RFC3339);
    expect(i.valid_until).toMatch(RFC3339);
    expect(Date.parse(i.valid_until)).toBeGreaterThan(Date.parse(i.valid_from));
    expect(i.name).toEqual(expect.any(String));
    expect(i.created_by_ref).toBe(identity[0].id);
    expect(Array.isArray(i.labels) && Array.isArray(i.indicator_types)).toBe(true);
  }
}

export function checkMisp(doc: Record<string, any>, attributes: number, type: string): void {
  const e = doc.Event;
  expect(e).toMatchObject({ info: expect.any(String), date: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/), threat_level_id: expect.stringMatching(/^[1-4]$/),
    analysis: expect.stringMatching(/^[0-2]$/), distribution: expect.stringMatching(/^[0-5]$/), uuid: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  expect(e.Attribute).toHaveLength(attributes);
  for (const a of e.Attribute) {
    expect(a).toMatchObject({ type, to_ids: true, value: expect.any(String), uuid: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(a.category).toBe(type === 'ip-src' ? 'Network activity' : 'Payload delivery');
  }
}
