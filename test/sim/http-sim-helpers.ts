/** Plain-HTTP probes and the `cowrie-sim <name>` launcher shared by the IP-lookup simulator tests. */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.js';

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** A GET with exactly these headers (fetch always adds a User-Agent; node:http adds none). */
export function rawGet(url: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A GET whose answer is expected to stall mid-body: `started` resolves with the status and the
 * bytes received once the first chunk arrives; `finished` tells whether the body ever completed.
 */
export function stalledGet(url: string, headers: Record<string, string> = {}): { started: Promise<{ status: number; first: string }>; finished: Promise<'complete' | 'cut'> } {
  let onStart!: (v: { status: number; first: string }) => void;
  const started = new Promise<{ status: number; first: string }>((r) => (onStart = r));
  const finished = new Promise<'complete' | 'cut'>((resolve) => {
    const req = request(url, { headers }, (res) => {
      res.setEncoding('utf8');
      res.once('data', (d: string) => onStart({ status: res.statusCode ?? 0, first: d }));
      res.on('end', () => resolve(res.complete ? 'complete' : 'cut'));
      res.on('error', () => resolve('cut'));
      res.on('aborted', () => resolve('cut'));
    });
    req.on('error', () => resolve('cut'));
    req.end();
  });
  return { started, finished };
}

export interface ServedCli {
  url: string;
  /** SIGTERM, then the exit code and everything printed on stdout. */
  stop(): Promise<{ code: number | null; out: string }>;
}

/** `bin/cowrie-sim <args>` (needs `npx tsc -p tsconfig.json` first), once it says where it listens. */
export function serveCli(args: string[]): Promise<ServedCli> {
  const child = spawn(join(ROOT, 'bin', 'cowrie-sim'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        resolve({
          url: m[1],
          stop: async () => {
            child.kill('SIGTERM');
            const code = await closed;
            return { code, out };
          },
        });
      }
    });
    closed.then((code) => reject(new Error(`exited early (${code}): ${out}${err}`)));
  });
}
