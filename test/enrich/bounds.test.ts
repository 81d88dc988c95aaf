import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../../src/log.js';
import { createCymruClient } from '../../src/enrich/sources/cymru.js';
import { createGreyNoiseClient, type GreyNoiseValue } from '../../src/enrich/sources/greynoise.js';
import type { SourceResult } from '../../src/enrich/sources/types.js';

const closers: Array<() => void> = [];
afterEach(() => closers.splice(0).forEach((c) => c()));

const unlimited = { tryConsume: async () => true, remaining: async () => 1e9 };

/** Every input size is bounded: a peer that answers without end cannot exhaust our memory. */
describe('bounded answers', () => {
  it('GreyNoise: a 6 MB body is refused and the IP left pending', async () => {
    const big = 'x'.repeat(6 * 1024 * 1024);
    const server = createHttpServer((_req, res) => res.end(`{"ip":"1.2.3.4","pad":"${big}"}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const got: SourceResult<GreyNoiseValue>[] = [];
    const c = createGreyNoiseClient({ url, apiKey: 'k', quota: unlimited, logger: new MemoryLogger(), retries: 0, backoffMs: 1 });
    await c.lookup(['8.8.4.4'], (r) => void got.push(r));
    expect(got).toHaveLength(1);
    expect(got[0].status).toBe('pending');
    expect(got[0].reason).toMatch(/exceeds/);
  });

  it('Cymru: an endless answer fails the batch instead of filling memory', async () => {
    const server = createTcpServer((sock) => {
      sock.on('error', () => {});
      const line = Buffer.from('Bulk mode; whois.cymru.com [2024-10-15 05:46:42 +0000]\n' + 'garbage '.repeat(1000) + '\n');
      const pump = () => { while (!sock.destroyed && sock.write(line)); if (!sock.destroyed) sock.once('drain', pump); };
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    const port = (server.address() as AddressInfo).port;
    const c = createCymruClient({ host: '127.0.0.1', port, retries: 1, timeoutMs: 5000, backoffBaseMs: 1 });
    const errors: string[] = [];
    const out = await c.lookupIps(['8.8.8.8'], { onBatch: (b) => { if (b.error) errors.push(b.error); } });
    expect(out.results[0].status).not.toBe('hit');
    expect(out.failedBatches).toBe(1);
    expect(errors.join(' ')).toMatch(/exceeds \d+ bytes/);
  });
});
