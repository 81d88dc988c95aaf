import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Reader } from 'maxmind';
import { list } from 'tar';
import { afterEach, describe, expect, it } from 'vitest';
import { LIMIT_MESSAGE } from '../../src/sim/maxmind-sim.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { ACCOUNT_ID, fixture, LICENSE_KEY, type Fixture } from './helpers.js';

const fixtures: Fixture[] = [];
afterEach(async () => {
  await Promise.all(fixtures.splice(0).map((f) => f.close()));
});

const auth = (id = ACCOUNT_ID, key = LICENSE_KEY) => ({ authorization: `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}` });
const link = (f: Fixture, edition: string, suffix = 'tar.gz') => `${f.sim.url}/geoip/databases/${edition}/download?suffix=${suffix}`;

async function setup(...args: Parameters<typeof fixture>): Promise<Fixture> {
  const f = await fixture(...args);
  fixtures.push(f);
  return f;
}

describe('MaxMind download simulator', () => {
  it('redirects an authenticated permalink to a presigned storage URL that serves the dated tar.gz and its .sha256', async () => {
    const f = await setup();
    const res = await fetch(link(f, 'GeoLite2-City'), { headers: auth(), redirect: 'manual' });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location')!);
    expect(location.pathname).toBe('/storage/GeoLite2-City_20260109.tar.gz');
    expect(location.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);

    const head = await fetch(location, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-disposition')).toBe('attachment; filename=GeoLite2-City_20260109.tar.gz');
    expect(new Date(head.headers.get('last-modified')!).toISOString()).toBe('2026-01-09T08:00:00.000Z');

    const archive = Buffer.from(await (await fetch(location)).arrayBuffer());
    const sumUrl = (await fetch(link(f, 'GeoLite2-City', 'tar.gz.sha256'), { headers: auth(), redirect: 'manual' })).headers.get('location')!;
    const sum = await (await fetch(sumUrl)).text();
    expect(sum).toBe(`${createHash('sha256').update(archive).digest('hex')}  GeoLite2-City_20260109.tar.gz\n`);

    const file = join(f.root, 'a.tar.gz');
    await writeFile(file, archive);
    const entries: string[] = [];
    await list({ file, onReadEntry: (e) => entries.push(e.path) });
    expect(entries).toEqual(['GeoLite2-City_20260109/GeoLite2-City.mmdb']);
    expect(f.sim.stats.downloads).toBe(1);
    expect(f.sim.stats.storageAuthorizations).toEqual([]);
  });

  it('answers 401 to missing or wrong credentials, 404 to an unknown edition, 403 to a forged storage URL', async () => {
    const f = await setup();
    expect((await fetch(link(f, 'GeoLite2-City'), { redirect: 'manual' })).status).toBe(401);
    expect((await fetch(link(f, 'GeoLite2-City'), { headers: auth(ACCOUNT_ID, 'nope'), redirect: 'manual' })).status).toBe(401);
    expect((await fetch(link(f, 'GeoIP2-Enterprise'), { headers: auth(), redirect: 'manual' })).status).toBe(404);
    expect((await fetch(`${f.sim.url}/storage/GeoLite2-City_20260109.tar.gz?X-Amz-Signature=${'0'.repeat(64)}`)).status).toBe(403);
  });

  it('counts archive downloads against the daily limit; HEAD checks never count', async () => {
    const f = await setup({ dailyLimit: 1 });
    for (let i = 0; i < 3; i++) expect((await fetch(link(f, 'GeoLite2-ASN'), { method: 'HEAD', headers: auth(), redirect: 'manual' })).status).toBe(302);
    expect((await fetch(link(f, 'GeoLite2-ASN'), { headers: auth(), redirect: 'manual' })).status).toBe(302);
    const over = await fetch(link(f, 'GeoLite2-ASN'), { headers: auth(), redirect: 'manual' });
    expect(over.status).toBe(429);
    expect(await over.text()).toContain(LIMIT_MESSAGE);
    expect(f.sim.stats.downloads).toBe(1);
  });

  it('publishes a rewritten database as a new dated release', async () => {
    const f = await setup();
    const before = (await fetch(link(f, 'GeoLite2-ASN'), { headers: auth(), redirect: 'manual', method: 'HEAD' })).headers.get('location');
    const { writeWorldDatabases } = await import('../../src/sim/mmdb-world.js');
    await writeWorldDatabases({ dir: f.served, seed: 3, coverage: [1], buildEpoch: new Date('2026-02-03T00:00:00Z') });
    const after = (await fetch(link(f, 'GeoLite2-ASN'), { headers: auth(), redirect: 'manual', method: 'HEAD' })).headers.get('location');
    expect(before).toContain('GeoLite2-ASN_20260109.tar.gz');
    expect(after).toContain('GeoLite2-ASN_20260203.tar.gz');
    expect(new Reader(await readFile(join(f.served, 'GeoLite2-ASN.mmdb'))).metadata.databaseType).toBe('GeoLite2-ASN');
  });

  it('serves nothing outside its folder', async () => {
    const f = await setup();
    const res = await fetch(`${f.sim.url}/geoip/databases/..%2F..%2Fetc%2Fpasswd/download?suffix=tar.gz`, { headers: auth(), redirect: 'manual' });
    expect(res.status).toBe(404);
  });
});

describe('cowrie-sim maxmind (needs `npx tsc -p tsconfig.json` first)', () => {
  it('serves a folder until SIGTERM, then prints what it counted', async () => {
    const f = await setup();
    const child = spawn(join(ROOT, 'bin', 'cowrie-sim'), ['maxmind', '--dir', f.served, '--port', '0', '--daily-limit', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', () => reject(new Error(`exited early: ${out}`)));
    });
    const head = await fetch(`${url}/geoip/databases/GeoLite2-City/download?suffix=tar.gz`, { method: 'HEAD', headers: auth(), redirect: 'manual' });
    expect(head.status).toBe(302);
    const code = await new Promise<number | null>((resolve) => {
      child.on('close', resolve);
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
    expect(out).toMatch(/maxmind simulator stopped: 1 requests, 1 HEAD, 0 downloads counted; answers: 1×302/);
  });

  it('rejects an unknown fault with exit 2', async () => {
    const r = await runCli('cowrie-sim', ['maxmind', '--dir', '.', '--faults', 'corrupt-archive,meteor']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown fault "meteor"');
  });
});
