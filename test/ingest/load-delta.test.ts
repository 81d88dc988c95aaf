import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { dialectCases, tempDir } from '../helpers/dialects.js';
import { count, ev, load, writeLines, freshStores } from './load-helpers.js';

const root = tempDir('cowrie-load-delta-');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = () => {
  const p = path.join(root, `c${n++}`);
  fs.mkdirSync(p, { recursive: true });
  return p;
};

let k = 0;
/** `m` new distinct command lines. */
const lines = (m: number) => Array.from({ length: m }, () => ev('cowrie.command.input', `sess${k % 7}`, k, { input: `echo ${k++}` }));

/** Every stored command number, sorted: shows loss and duplication at once. */
async function stored(s: Store): Promise<string[]> {
  const rows = await s.db.query<{ payload: unknown }>('SELECT payload FROM raw_events');
  return rows.map((r) => (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as { input: string }).map((p) => p.input).sort();
}
const inputs = (ls: string[]) => ls.map((l) => (JSON.parse(l) as { input: string }).input).sort();

for (const d of dialectCases()) {
  describe.skipIf(d.skip)(`[${d.name}] delta mode`, () => {
    const fresh = freshStores(d);
    const delta = (s: Store, paths: string[], batchSize = 3) => load(s, paths, { mode: 'delta', batchSize });

    it('appending between two runs loads exactly the appended events; an unchanged file reads nothing', async () => {
      const base = dir();
      const live = path.join(base, 'cowrie.json');
      const first = lines(10);
      writeLines(live, first);
      const s = await fresh();
      const r1 = await delta(s, [base]);
      expect([r1.eventsRead, r1.inserted]).toEqual([10, 10]);
      const more = lines(4);
      writeLines(live, more, true);
      const r2 = await delta(s, [base]);
      expect([r2.eventsRead, r2.inserted, r2.duplicates]).toEqual([4, 4, 0]);
      const r3 = await delta(s, [base]);
      expect([r3.eventsRead, r3.inserted, r3.filesSkipped, r3.bytesRead]).toEqual([0, 0, 1, fs.statSync(live).size]);
      expect(await stored(s)).toEqual(inputs([...first, ...more]));
    });

    it('a half-written last line is left alone until it is complete, then loaded once', async () => {
      const base = dir();
      const live = path.join(base, 'cowrie.json');
      const [a, b, c, dLine] = lines(4);
      fs.writeFileSync(live, `${a}\n${b}\n${c.slice(0, 25)}`);
      const s = await fresh();
      const r1 = await delta(s, [live]);
      expect([r1.eventsRead, r1.inserted, r1.deadLettered, r1.partialLines]).toEqual([2, 2, 0, 1]);
      // Still incomplete: nothing new, and no dead letter either.
      fs.appendFileSync(live, c.slice(25, 40));
      const r2 = await delta(s, [live]);
      expect([r2.eventsRead, r2.deadLettered, r2.partialLines]).toEqual([0, 0, 1]);
      fs.appendFileSync(live, `${c.slice(40)}\n${dLine}\n`);
      const r3 = await delta(s, [live]);
      expect([r3.eventsRead, r3.inserted, r3.deadLettered, r3.partialLines]).toEqual([2, 2, 0, 0]);
      expect(await count(s, 'dead_letter_events')).toBe(0);
      expect(await stored(s)).toEqual(inputs([a, b, c, dLine]));
      // A bulk load of a live file leaves a partial line alone too.
      fs.appendFileSync(live, '{"eventid":"cowrie.comm');
      const r4 = await load(s, [live]);
      expect([r4.deadLettered, r4.partialLines, r4.inserted]).toEqual([0, 1, 0]);
    });

    it('rotation by rename (cowrie.json → dated file, new cowrie.json) loses and duplicates nothing and re-reads nothing', async () => {
      const base = dir();
      const live = path.join(base, 'cowrie.json');
      const day1 = lines(10);
      writeLines(live, day1);
      const s = await fresh();
      await delta(s, [base]);
      const late = lines(2);
      writeLines(live, late, true); // written after the last run, before midnight
      fs.renameSync(live, path.join(base, 'cowrie.json.2024-01-01'));
      const day2 = lines(3);
      writeLines(live, day2);
      const r = await delta(s, [base]);
      expect([r.eventsRead, r.inserted, r.duplicates]).toEqual([5, 5, 0]);
      expect(await stored(s)).toEqual(inputs([...day1, ...late, ...day2]));
      const again = await delta(s, [base]);
      expect(again.eventsRead).toBe(0);
    });

    it('numbered rotation (cowrie.json → .1 → .2) resumes each file where it was, even when .1 had a cursor of its own', async () => {
      const base = dir();
      const live = path.join(base, 'cowrie.json');
      const one = path.join(base, 'cowrie.json.1');
      const two = path.join(base, 'cowrie.json.2');
      const a = lines(6);
      writeLines(live, a);
      const s = await fresh();
      await delta(s, [base]);
      fs.renameSync(live, one);
      const b = lines(5);
      writeLines(live, b);
      const r1 = await delta(s, [base]);
      expect([r1.eventsRead, r1.inserted]).toEqual([5, 5]);
      const bLate = lines(2);
      writeLines(live, bLate, true);
      fs.renameSync(one, two);
      fs.renameSync(live, one);
      const c = lines(3);
      writeLines(live, c);
      const r2 = await delta(s, [base]);
      expect([r2.eventsRead, r2.inserted, r2.duplicates]).toEqual([5, 5, 0]);
      expect(await stored(s)).toEqual(inputs([...a, ...b, ...bLate, ...c]));
      // The rotated file is later compressed under a new name: nothing new, nothing lost.
      fs.writeFileSync(`${two}.gz`, gzipSync(fs.readFileSync(two)));
      fs.rmSync(two);
      const r3 = await delta(s, [base]);
      expect([r3.inserted, r3.deadLettered]).toEqual([0, 0]);
      expect(await stored(s)).toEqual(inputs([...a, ...b, ...bLate, ...c]));
      expect((await delta(s, [base])).eventsRead).toBe(0);
    });

    it('copytruncate (copy to cowrie.json.1, truncate cowrie.json) loses and duplicates nothing', async () => {
      const base = dir();
      const live = path.join(base, 'cowrie.json');
      const a = lines(10);
      writeLines(live, a);
      const s = await fresh();
      await delta(s, [base]);
      const late = lines(2);
      writeLines(live, late, true);
      fs.copyFileSync(live, path.join(base, 'cowrie.json.1'));
      fs.truncateSync(live, 0);
      const r0 = await delta(s, [base]);
      expect(r0.inserted).toBe(2);
      const b = lines(3);
      writeLines(live, b, true);
      const r = await delta(s, [base]);
      expect([r.eventsRead, r.inserted, r.duplicates]).toEqual([3, 3, 0]);
      expect(await stored(s)).toEqual(inputs([...a, ...late, ...b]));
    });

    it('copytruncate noticed only after the new file grew past the old cursor still reads it from the start', async () => {
      const base = dir();
      const live = path.join(base, 'cowrie.json');
      const a = lines(3);
      writeLines(live, a);
      const s = await fresh();
      await delta(s, [live]);
      fs.copyFileSync(live, path.join(base, 'cowrie.json.1'));
      fs.truncateSync(live, 0);
      const b = lines(8);
      writeLines(live, b, true);
      const r = await delta(s, [base]);
      expect(r.inserted).toBe(8);
      expect(await count(s, 'dead_letter_events')).toBe(0);
      expect(await stored(s)).toEqual(inputs([...a, ...b]));
    });

    it('a file rewritten shorter with the same first line is read again from the start', async () => {
      const base = dir();
      const live = path.join(base, 'cowrie.json');
      const a = lines(6);
      writeLines(live, a);
      const s = await fresh();
      await delta(s, [live]);
      const b = lines(1);
      writeLines(live, [a[0], ...b]);
      const r = await delta(s, [live]);
      expect([r.inserted, r.deadLettered]).toEqual([1, 0]);
      // Growing past the old end later must not resume in the middle of a line.
      const c = lines(12);
      writeLines(live, c, true);
      const r2 = await delta(s, [live]);
      expect([r2.inserted, r2.deadLettered]).toEqual([12, 0]);
      expect(await stored(s)).toEqual(inputs([...a, ...b, ...c]));
    });

    it('a bulk run after delta runs re-reads the files but inserts nothing; a new file in the folder is picked up', async () => {
      const base = dir();
      const a = lines(5);
      writeLines(path.join(base, 'cowrie.json'), a);
      const s = await fresh();
      await delta(s, [base]);
      const bulk = await load(s, [base]);
      expect([bulk.eventsRead, bulk.inserted, bulk.duplicates]).toEqual([5, 0, 5]);
      const b = lines(2);
      writeLines(path.join(base, 'sub', 'cowrie.2023-11-30.json'), b);
      const r = await delta(s, [base]);
      expect([r.eventsRead, r.inserted]).toEqual([2, 2]);
      expect(await stored(s)).toEqual(inputs([...a, ...b]));
    });
  });
}
