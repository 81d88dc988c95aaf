import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateLogs, type GenerateLogsSummary } from '../../src/sim/log-generator.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { count, load, snapshot, freshStores } from './load-helpers.js';

const hasBzip2 = (() => {
  try {
    execFileSync('bzip2', ['--help'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();

const root = tempDir('cowrie-load-idem-');
let gen: GenerateLogsSummary;
const plainDir = path.join(root, 'plain');

/** The same files again under another folder, each compressed (names keep no hint: detection is by magic bytes). */
function compressedCopy(kind: 'gz' | 'bz2'): string {
  const dir = path.join(root, kind);
  if (fs.existsSync(dir)) return dir;
  for (const f of gen.paths) {
    const rel = path.relative(plainDir, f);
    const dest = path.join(dir, `${rel}.${kind}`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    const data = fs.readFileSync(f);
    fs.writeFileSync(dest, kind === 'gz' ? gzipSync(data) : execFileSync('bzip2', ['-c'], { input: data, maxBuffer: 1 << 28 }));
  }
  return dir;
}

beforeAll(async () => {
  gen = await generateLogs({ outDir: plainDir, sessions: 300, ips: 40, sensors: 2, days: 3, seed: 11, faults: true });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] loading is idempotent and order-independent`, () => {
    const fresh = freshStores(d);
    let reference: Awaited<ReturnType<typeof snapshot>> | null = null;
    /** One plain load of everything: what every other way of loading must equal. */
    const referenceSnapshot = async () => {
      if (!reference) {
        const s = await fresh();
        const r = await load(s, [plainDir]);
        expect(r.filesFailed).toEqual([]);
        reference = await snapshot(s);
      }
      return reference;
    };

    it('the reference load stores every generated event and one row per session and IP', async () => {
      const ref = await referenceSnapshot();
      // 7 of the 12 fault kinds per day are valid events (cleaned or unusual), 5 are dead letters.
      expect(ref.raw_events.length).toBe(gen.events + 7 * 3);
      expect(ref.dead_letter_events.length).toBe(5 * 3);
      expect(new Set(ref.session_summaries.map((r) => r.session_id)).size).toBe(ref.session_summaries.length);
      expect(ref.ip_inventory.length).toBeGreaterThanOrEqual(gen.uniqueIps);
    });

    it('loading the same files twice changes nothing', async () => {
      const s = await fresh();
      const first = await load(s, [plainDir]);
      const before = await snapshot(s);
      const second = await load(s, [plainDir]);
      expect(await snapshot(s)).toEqual(before);
      expect(before).toEqual(await referenceSnapshot());
      expect(second.eventsRead).toBe(first.eventsRead);
      expect(second.inserted).toBe(0);
      expect(second.duplicates).toBe(first.inserted);
      expect(second.sessions).toBe(0);
      expect(second.newIps).toBe(0);
      // Dead letters are counted in each run's summary but stored once.
      expect(await count(s, 'dead_letter_events')).toBe(15);
    });

    it('loading file by file in reverse order gives the same tables', async () => {
      const s = await fresh();
      for (const f of [...gen.paths].reverse()) await load(s, [f]);
      expect(await snapshot(s)).toEqual(await referenceSnapshot());
    });

    it('loading in an interleaved order, twice over, gives the same tables', async () => {
      const s = await fresh();
      const order = gen.paths.filter((_, i) => i % 2 === 1).concat(gen.paths.filter((_, i) => i % 2 === 0));
      for (const f of order) await load(s, [f]);
      for (const f of [...order].reverse()) await load(s, [f], { mode: 'delta' });
      await load(s, [plainDir], { batchSize: 7 });
      expect(await snapshot(s)).toEqual(await referenceSnapshot());
    });

    it('plain files then gzip copies leave every table as after the plain files', async () => {
      const s = await fresh();
      await load(s, [plainDir]);
      const r = await load(s, [compressedCopy('gz')]);
      expect(r.filesFailed).toEqual([]);
      expect(r.inserted).toBe(0);
      expect(await snapshot(s)).toEqual(await referenceSnapshot());
    });

    it('gzip copies alone load the same tables as the plain files', async () => {
      const s = await fresh();
      const r = await load(s, [compressedCopy('gz')], { batchSize: 100 });
      expect(r.filesFailed).toEqual([]);
      expect(await snapshot(s)).toEqual(await referenceSnapshot());
    });

    it.skipIf(!hasBzip2)('bzip2 copies, before and after the plain files, change nothing', async () => {
      const bz = compressedCopy('bz2');
      const s = await fresh();
      const r = await load(s, [bz]);
      expect(r.filesFailed).toEqual([]);
      expect(await snapshot(s)).toEqual(await referenceSnapshot());
      await load(s, [plainDir]);
      await load(s, [compressedCopy('gz')]);
      expect(await snapshot(s)).toEqual(await referenceSnapshot());
    });
  });
}
