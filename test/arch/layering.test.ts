import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

const files = sources(path.join(ROOT, 'src')).map((f) => ({ rel: path.relative(ROOT, f), text: fs.readFileSync(f, 'utf8') }));
const imports = (text: string) => [...text.matchAll(/^import[^;]*?from '([^']+)'/gms)].map((m) => m[1]);

/** docs/ARCHITECTURE.md: dependencies point one way, and dialect differences stay in their folder. */
describe('layering', () => {
  it('only src/store/dialects imports the database drivers', () => {
    const bad = files.filter((f) => !f.rel.startsWith('src/store/dialects/') && imports(f.text).some((m) => m === 'pg' || m === 'better-sqlite3'));
    expect(bad.map((f) => f.rel)).toEqual([]);
  });

  it('core modules never import the CLI or a concrete dialect', () => {
    const core = files.filter((f) => /^src\/(ingest|enrich|store|status|report|orchestrate)\//.test(f.rel) && !f.rel.startsWith('src/store/'));
    const bad = core.filter((f) => imports(f.text).some((m) => m.includes('/cli/') || m.includes('/dialects/')));
    expect(bad.map((f) => f.rel)).toEqual([]);
  });

  it('nothing outside src/cli calls process.exit', () => {
    const bad = files.filter((f) => !f.rel.startsWith('src/cli/') && /process\.exit\(/.test(f.text));
    expect(bad.map((f) => f.rel)).toEqual([]);
  });

  it('relative imports end in .js (ESM)', () => {
    const bad = files.flatMap((f) => imports(f.text).filter((m) => m.startsWith('.') && !m.endsWith('.js')).map((m) => `${f.rel}: ${m}`));
    expect(bad).toEqual([]);
  });
});
