import type { TestProject } from 'vitest/node';
// One throwaway-cluster implementation serves the tests and the benchmarks.
import { startPgCluster, type PgCluster } from '../bench/lib/pg.js';

let cluster: PgCluster | null = null;

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

/**
 * PostgreSQL for the storage tests: COWRIE_TEST_PG_URL when set; otherwise a
 * throwaway cluster when server binaries exist; otherwise the PostgreSQL half is
 * skipped with one loud line — or fails the run when COWRIE_REQUIRE_PG=1.
 */
export async function setup(project: TestProject): Promise<void> {
  let url = process.env.COWRIE_TEST_PG_URL ?? '';
  if (!url && process.env.COWRIE_SKIP_PG !== '1') {
    try {
      cluster = await startPgCluster();
      url = cluster.url;
    } catch (err) {
      if (process.env.COWRIE_REQUIRE_PG === '1') {
        throw new Error(`COWRIE_REQUIRE_PG=1 but PostgreSQL could not be started: ${(err as Error).message}`);
      }
      console.error(`\n!!! PostgreSQL tests SKIPPED: ${(err as Error).message}. Install Debian's postgresql package or set COWRIE_TEST_PG_URL.\n`);
    }
  } else if (!url) {
    if (process.env.COWRIE_REQUIRE_PG === '1') throw new Error('COWRIE_REQUIRE_PG=1 conflicts with COWRIE_SKIP_PG=1');
    console.error('\n!!! PostgreSQL tests SKIPPED (COWRIE_SKIP_PG=1)\n');
  }
  project.provide('pgUrl', url);
}

export async function teardown(): Promise<void> {
  cluster?.stop();
  cluster = null;
}
