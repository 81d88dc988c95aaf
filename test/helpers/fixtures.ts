import path from 'node:path';

/** MaxMind's own test databases, copied into the repository (see test/fixtures/maxmind/README.md). */
export const MAXMIND_FIXTURES = path.resolve(import.meta.dirname, '../fixtures/maxmind');
