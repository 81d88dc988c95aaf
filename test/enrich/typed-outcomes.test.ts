/**
 * Outcomes are typed, never read back from log text: rewording a message must not change what the
 * code does. This scans src/ for regular expressions that match our own log messages, and for
 * loggers that look at the message they are given.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The fixed text of every message handed to a logger (`${…}` parts become a space). */
function messageTexts(code: string): string[] {
  const out: string[] = [];
  const call = /\b(?:logger|log|this\.logger|o\.logger|ctx\.logger)\.(?:info|warn|error|debug)\(\s*(`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*')/g;
  const notice = /\bnotice\([^,]+,\s*(`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*')/g;
  for (const re of [call, notice]) {
    for (const m of code.matchAll(re)) out.push(m[1].slice(1, -1).replace(/\$\{[^}]*\}/g, ' '));
  }
  return out;
}

/** Regular-expression literals applied with .test / .match / .exec / .replace / .search. */
function regexLiterals(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/\/((?:[^/\\\n]|\\.){3,})\/[gimsuy]*\.(?:test|exec)\(/g)) out.push(m[1]);
  for (const m of code.matchAll(/\.(?:match|search|replace)\(\s*\/((?:[^/\\\n]|\\.){3,})\/[gimsuy]*/g)) out.push(m[1]);
  return out;
}

/** Plain words of each alternative of a pattern (regex syntax dropped); only phrases of two words or more count. */
function phrases(pattern: string): string[] {
  return pattern.split('|')
    .map((alt) => alt.replace(/\\[dswbDSWB]|\[[^\]]*\]|[()^$?*+{}.\\]|\d+,?\d*/g, ' ').replace(/\s+/g, ' ').trim())
    .filter((p) => /^[A-Za-z][A-Za-z' -]*[A-Za-z]$/.test(p) && p.includes(' '));
}

/** Findings: a pattern whose words are part of one of our messages, or a logger that reads its message. */
export function messageMatching(files: Array<{ rel: string; text: string }>): string[] {
  const messages = files.flatMap((f) => messageTexts(f.text)).map((m) => m.toLowerCase());
  const found: string[] = [];
  for (const f of files) {
    for (const re of regexLiterals(f.text)) {
      for (const p of phrases(re)) {
        if (messages.some((m) => m.includes(p.toLowerCase()))) found.push(`${f.rel}: /${re}/ matches log text "${p}"`);
      }
    }
    // A wrapping logger that decides by what it is told: `warn: (m) => { if (…m…) … }`.
    for (const m of f.text.matchAll(/\b(?:info|warn|error|debug)\s*:\s*\((\w+)\)\s*=>\s*\{?[^\n]*\.(?:test|includes|startsWith|match)\(\s*\1\b/g)) {
      found.push(`${f.rel}: a logger reads its message (${m[0].slice(0, 60)}…)`);
    }
  }
  return found;
}

describe('typed outcomes, not message text', () => {
  it('no code in src/ matches its own log messages', () => {
    const files = sourceFiles(path.join(ROOT, 'src')).map((f) => ({ rel: path.relative(ROOT, f), text: fs.readFileSync(f, 'utf8') }));
    expect(files.length).toBeGreaterThan(50);
    expect(messageMatching(files)).toEqual([]);
  });

  it('would catch the patterns it guards against', () => {
    const sample = {
      rel: 'sample.ts',
      text: [
        "logger.warn(`${title} daily quota spent; ${n} IPs left pending`);",
        'const clientLogger = { warn: (m) => { if (!(stopping && /quota spent/.test(m))) logger.warn(m); } };',
        "if (/Cymru stopped after/.test(line)) failed = true;",
        "logger.error(`Cymru stopped after ${n} failed batches`);",
      ].join('\n'),
    };
    const found = messageMatching([sample]);
    expect(found.some((f) => f.includes('"quota spent"'))).toBe(true);
    expect(found.some((f) => f.includes('"Cymru stopped after"'))).toBe(true);
    expect(found.some((f) => f.includes('a logger reads its message'))).toBe(true);
  });
});
