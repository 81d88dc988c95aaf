import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { detectCompression, findLogFiles, hashFirstLine, readLines, TOO_LONG_PREFIX_BYTES, type LineRecord, type ReadLinesOptions } from '../../src/ingest/reader.js';

const root = mkdtempSync(join(tmpdir(), 'cowrie-reader-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const file = (name: string, data: string | Buffer) => {
  const dir = join(root, `t${n++}`);
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
};

const hasBzip2 = (() => {
  try {
    execFileSync('which', ['bzip2'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();
const bzip2 = (data: Buffer): Buffer => execFileSync('bzip2', ['-c'], { input: data });

async function collect(path: string, opts: ReadLinesOptions = {}) {
  const reader = readLines(path, opts);
  const recs: LineRecord[] = [];
  for await (const r of reader) recs.push({ ...r, line: Buffer.from(r.line) });
  return { recs, texts: recs.map((r) => r.line.toString()), summary: reader.summary! };
}

const LINES = ['{"a":1}', '{"b":"two"}', '', '{"c":[3]}', '{"d":"é"}'];
const TEXT = `${LINES.join('\n')}\n`;

describe('readLines', () => {
  it('reads a plain file with byte offsets of each line and skips blank lines', async () => {
    const p = file('cowrie.json', TEXT);
    const { recs, texts, summary } = await collect(p);
    expect(texts).toEqual(['{"a":1}', '{"b":"two"}', '{"c":[3]}', '{"d":"é"}']);
    const buf = Buffer.from(TEXT);
    for (const r of recs) {
      expect(buf.subarray(r.offset, r.end - 1).toString()).toBe(r.line.toString());
      expect(buf[r.end - 1]).toBe(0x0a);
    }
    expect(recs[3].length).toBe(Buffer.byteLength('{"d":"é"}'));
    expect(summary).toMatchObject({ compression: 'none', endOffset: buf.length, partialOffset: null, lines: 4, blankLines: 1, totalBytes: buf.length });
  });

  it('reads gzip with offsets in decompressed bytes, identical to the plain file', async () => {
    const plain = await collect(file('cowrie.json', TEXT));
    const gz = await collect(file('cowrie.json.1.gz', gzipSync(TEXT)));
    expect(gz.summary.compression).toBe('gzip');
    expect(gz.recs.map((r) => [r.offset, r.end, r.line.toString()])).toEqual(plain.recs.map((r) => [r.offset, r.end, r.line.toString()]));
  });

  it.skipIf(!hasBzip2)(`reads bzip2 (needs the bzip2 CLI${hasBzip2 ? '' : ': SKIPPED, bzip2 not found on this machine'})`, async () => {
    const bz = await collect(file('cowrie.json.bz2', bzip2(Buffer.from(TEXT))));
    expect(bz.summary.compression).toBe('bzip2');
    expect(bz.texts).toEqual(['{"a":1}', '{"b":"two"}', '{"c":[3]}', '{"d":"é"}']);
    expect(bz.summary.endOffset).toBe(Buffer.byteLength(TEXT));
  });

  it('detects compression by magic bytes, not by name', async () => {
    const fakeGz = file('cowrie.json.2.gz', TEXT); // plain text behind a .gz name
    const bareGz = file('cowrie-no-suffix', gzipSync(TEXT));
    expect(await detectCompression(fakeGz)).toBe('none');
    expect(await detectCompression(bareGz)).toBe('gzip');
    expect(await detectCompression(file('empty', ''))).toBe('none');
    expect((await collect(fakeGz)).texts).toHaveLength(4);
    expect((await collect(bareGz)).texts).toHaveLength(4);
    if (hasBzip2) expect(await detectCompression(file('x.gz', bzip2(Buffer.from(TEXT))))).toBe('bzip2');
  });

  it('resumes from a byte offset in plain and gzip files', async () => {
    const offset = Buffer.byteLength('{"a":1}\n{"b":"two"}\n');
    for (const p of [file('cowrie.json', TEXT), file('cowrie.json.gz', gzipSync(TEXT))]) {
      const { texts, recs, summary } = await collect(p, { startOffset: offset });
      expect(texts).toEqual(['{"c":[3]}', '{"d":"é"}']);
      expect(recs[0].offset).toBe(offset + 1); // the blank line is skipped
      expect(summary.endOffset).toBe(Buffer.byteLength(TEXT));
    }
  });

  it('reports a plain file shorter than the resume offset as shrunk', async () => {
    const { recs, summary } = await collect(file('cowrie.json', '{"a":1}\n'), { startOffset: 500 });
    expect(recs).toHaveLength(0);
    expect(summary.shrunk).toBe(true);
  });

  it('does not yield a half-written last line, and yields it once completed', async () => {
    const p = file('cowrie.json', '{"a":1}\n{"b":2}\n{"c":');
    const first = await collect(p);
    expect(first.texts).toEqual(['{"a":1}', '{"b":2}']);
    const partialAt = Buffer.byteLength('{"a":1}\n{"b":2}\n');
    expect(first.summary.partialOffset).toBe(partialAt);
    expect(first.summary.partialBytes).toBe(5);
    expect(first.summary.endOffset).toBe(partialAt);
    appendFileSync(p, '3}\n{"d":4}\n');
    const second = await collect(p, { startOffset: first.summary.endOffset });
    expect(second.texts).toEqual(['{"c":3}', '{"d":4}']);
    expect(second.recs[0].offset).toBe(partialAt);
    expect(second.summary.partialOffset).toBeNull();
    // The caller can ask for the tail, flagged as such, to decide what to do with it.
    const tail = await collect(file('cowrie.json', '{"a":1}\n{"z":9}'), { yieldPartial: true });
    expect(tail.texts).toEqual(['{"a":1}', '{"z":9}']);
    expect(tail.recs.map((r) => r.partial ?? false)).toEqual([false, true]);
    expect(tail.summary.endOffset).toBe(Buffer.byteLength('{"a":1}\n{"z":9}'));
  });

  it('flags over-long lines with a prefix instead of buffering them, also across read chunks', async () => {
    const long = 'x'.repeat(1000);
    const small = await collect(file('cowrie.json', `{"a":1}\n${long}\n{"b":2}\n`), { maxLineBytes: 100 });
    expect(small.recs.map((r) => r.tooLong)).toEqual([false, true, false]);
    expect(small.recs[1].length).toBe(1000);
    expect(small.recs[1].line.toString()).toBe(long.slice(0, 1000 > TOO_LONG_PREFIX_BYTES ? TOO_LONG_PREFIX_BYTES : 1000));
    expect(small.summary.tooLongLines).toBe(1);

    // 3 MiB line spans several 1 MiB read chunks; a 1.5 MiB line below the bound comes back whole.
    const huge = 'y'.repeat(3 * 1024 * 1024);
    const big = 'z'.repeat(1.5 * 1024 * 1024);
    const { recs } = await collect(file('cowrie.json', `{"a":1}\n${huge}\n${big}\n{"b":2}\n`), { maxLineBytes: 2 * 1024 * 1024 });
    expect(recs.map((r) => [r.tooLong, r.length])).toEqual([[false, 7], [true, huge.length], [false, big.length], [false, 7]]);
    expect(recs[1].line.length).toBe(TOO_LONG_PREFIX_BYTES);
    expect(recs[2].line.toString() === big).toBe(true);
    expect(recs[3].offset).toBe(8 + huge.length + 1 + big.length + 1);
  });

  it('rejects a corrupt or truncated gzip with an error naming the file', async () => {
    const gz = gzipSync(Buffer.from(TEXT.repeat(200)));
    const truncated = file('cowrie.json.3.gz', gz.subarray(0, gz.length - 30));
    await expect(collect(truncated)).rejects.toThrow(truncated);
    const garbled = Buffer.from(gz);
    for (let i = 20; i < 60; i++) garbled[i] ^= 0x5a;
    const bad = file('cowrie.json.4.gz', garbled);
    await expect(collect(bad)).rejects.toThrow(/gzip.*cowrie\.json\.4\.gz/);
  });

  it.skipIf(!hasBzip2)('rejects a corrupt bzip2 with an error naming the file', async () => {
    const bz = bzip2(Buffer.from(TEXT.repeat(200)));
    const bad = file('cowrie.json.5.bz2', bz.subarray(0, bz.length - 20));
    await expect(collect(bad)).rejects.toThrow(bad);
  });
});

describe('hashFirstLine', () => {
  it('is the sha256 of the first complete line, the same for a compressed copy, null when there is none', async () => {
    const expected = createHash('sha256').update('{"a":1}').digest('hex');
    expect(await hashFirstLine(file('cowrie.json', TEXT))).toBe(expected);
    expect(await hashFirstLine(file('cowrie.json.1.gz', gzipSync(TEXT)))).toBe(expected);
    expect(await hashFirstLine(file('cowrie.json', ''))).toBeNull();
    expect(await hashFirstLine(file('cowrie.json', '{"half":'))).toBeNull();
  });
});

describe('findLogFiles', () => {
  it('expands folders recursively to Cowrie JSON logs including rotated names, plus globs and explicit files', async () => {
    const dir = join(root, 'logs');
    const names = [
      'cowrie.json', 'cowrie.json.2025-01-01', 'cowrie.json.1', 'cowrie.json.2.gz', 'cowrie.2023-11-30.json', 'cowrie.json.bz2',
      'cowrie.json.2025-01-02.gz', 'sensor-b/cowrie.json', 'sensor-b/deep/cowrie.json.3.gz', 'cowrie.log', 'notes.txt', 'cowrie.log.1',
    ];
    for (const name of names) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), '{}\n');
    }
    const odd = join(root, 'odd-name.log');
    writeFileSync(odd, '{}\n');
    const { files, missing } = await findLogFiles([dir, join(dir, 'cowrie.json'), odd, join(root, 'nope'), `${dir}/sensor-b/**/*.gz`, `${root}/none-*.json`]);
    const expected = [
      'cowrie.2023-11-30.json', 'cowrie.json', 'cowrie.json.1', 'cowrie.json.2.gz', 'cowrie.json.2025-01-01', 'cowrie.json.2025-01-02.gz',
      'cowrie.json.bz2', 'sensor-b/cowrie.json', 'sensor-b/deep/cowrie.json.3.gz',
    ].map((x) => join(dir, x));
    expect(files).toEqual([...expected, odd].sort());
    expect(missing).toEqual([join(root, 'nope'), `${root}/none-*.json`]);
    const globbed = await findLogFiles(['sensor-b/**/*.gz'], dir);
    expect(globbed).toEqual({ files: [join(dir, 'sensor-b/deep/cowrie.json.3.gz')], missing: [], empty: [], linksLeaving: [] });
    expect(readFileSync(files[0], 'utf8')).toBe('{}\n');
  });
});

describe('findLogFiles and links (issue 8 item 25)', () => {
  it('does not follow a link out of a folder or glob, keeps links inside it once, and takes explicitly named links', async () => {
    const base = join(root, 'links');
    const logs = join(base, 'logs');
    const outside = join(base, 'secret');
    mkdirSync(join(logs, 'sub'), { recursive: true });
    mkdirSync(join(outside, 'd'), { recursive: true });
    writeFileSync(join(outside, 'shadow'), 'root:x\n');
    writeFileSync(join(outside, 'd', 'x.json'), '{}\n');
    writeFileSync(join(logs, 'cowrie.json'), '{}\n');
    writeFileSync(join(logs, 'sub', 'cowrie.json.2024-01-01'), '{}\n');
    symlinkSync(join(outside, 'shadow'), join(logs, 'cowrie.json.1'));
    symlinkSync('../secret/d', join(logs, 'old'));
    symlinkSync('sub', join(logs, 'sub-link'));
    symlinkSync('cowrie.json', join(logs, 'cowrie.json.9'));
    const r = await findLogFiles([logs]);
    expect(r.files).toEqual([join(logs, 'cowrie.json'), join(logs, 'sub', 'cowrie.json.2024-01-01')]);
    expect(r.linksLeaving).toEqual([join(logs, 'cowrie.json.1'), join(logs, 'old', 'x.json')]);
    const g = await findLogFiles([`${logs}/cowrie.json.*`]);
    expect(g).toEqual({ files: [join(logs, 'cowrie.json')], missing: [], empty: [], linksLeaving: [join(logs, 'cowrie.json.1')] });
    // Named on the command line, a link is the operator's choice.
    expect((await findLogFiles([join(logs, 'cowrie.json.1')])).files).toEqual([join(logs, 'cowrie.json.1')]);
  });

  it('reports a folder without logs as empty', async () => {
    const dir = join(root, 'no-logs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cowrie.log'), '2024-01-05T17:09:34.399033Z [x] hello\n');
    expect(await findLogFiles([dir])).toEqual({ files: [], missing: [], empty: [dir], linksLeaving: [] });
  });
});
