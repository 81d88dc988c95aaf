import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';

export interface DialectCase {
  name: 'sqlite' | 'postgres';
  /** A fresh, empty database URL for one test. */
  newUrl(): Promise<string>;
}

export function tempDir(prefix = 'cowrie-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const pgUrl = inject('pgUrl');

/** Every storage test runs once per dialect; DIALECTS=sqlite narrows the list. */
export function dialectCases(): Array<DialectCase & { skip: boolean }> {
  const only = (process.env.DIALECTS ?? 'sqlite,postgres').split(',');
  return [
    {
      name: 'sqlite' as const,
      skip: !only.includes('sqlite'),
      newUrl: async () => `sqlite:${path.join(tempDir(), 'cowrie.sqlite')}`,
    },
    {
      name: 'postgres' as const,
      skip: !only.includes('postgres') || !pgUrl,
      newUrl: () => createPgDatabase(),
    },
  ];
}

export function pgAdminUrl(): string {
  return pgUrl;
}

export async function createPgDatabase(): Promise<string> {
  const name = `cowrie_${crypto.randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const u = new URL(pgUrl);
  u.pathname = `/${name}`;
  return u.toString();
}
