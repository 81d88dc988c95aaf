import path from 'node:path';
import { UsageError, redactUrl } from '../errors.js';

export type DbTarget =
  | { dialect: 'sqlite'; path: string; display: string }
  | { dialect: 'postgres'; connectionString: string; display: string };

export const DEFAULT_DB_URL = 'sqlite:cowrie.sqlite';

/**
 * Accepts what users of the Python original write:
 *   postgresql://… / postgres://…              node-postgres connection string
 *   sqlite:///relative.db                      relative to the working directory (SQLAlchemy)
 *   sqlite:////absolute/path.db                absolute (SQLAlchemy)
 *   sqlite:PATH                                the path as written
 *   a bare file path                           SQLite
 */
export function parseDbUrl(raw: string, cwd = process.cwd()): DbTarget {
  const url = raw.trim();
  if (url === '') throw new UsageError('--db is empty: give a database URL such as sqlite:cowrie.sqlite or postgresql://user@host/db');
  const lower = url.toLowerCase();
  if (/^postgres(ql)?:/.test(lower)) {
    // `postgresql:/host/db` (one slash) or `postgresql:user:pw@host` would otherwise be taken for a
    // SQLite file name and echoed with its password: refuse anything but scheme://.
    if (!/^postgres(ql)?:\/\//.test(lower)) {
      throw new UsageError(`malformed PostgreSQL URL: ${lower.startsWith('postgresql') ? 'postgresql' : 'postgres'}: must be followed by // (postgresql://user@host/db)`);
    }
    try {
      const u = new URL(url);
      if (!u.hostname && !u.searchParams.get('host')) throw new Error('no host');
    } catch {
      throw new UsageError(`invalid PostgreSQL URL: ${redactUrl(url)}`);
    }
    return { dialect: 'postgres', connectionString: url, display: redactUrl(url) };
  }
  if (lower.startsWith('sqlite:')) {
    let rest = url.slice('sqlite:'.length);
    if (rest.startsWith('///')) rest = rest.slice(3); // sqlite:///rel or sqlite:////abs
    else if (rest.startsWith('//')) throw new UsageError(`invalid SQLite URL: ${redactUrl(url)} (use sqlite:///relative.db or sqlite:////absolute/path.db)`);
    if (rest === '' || rest === ':memory:') {
      throw new UsageError(`invalid SQLite URL: ${redactUrl(url)} (a file path is required)`);
    }
    const p = path.resolve(cwd, rest);
    return { dialect: 'sqlite', path: p, display: `sqlite:${p}` };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new UsageError(`unsupported database URL scheme: ${url.split('://')[0]}:// (use sqlite:PATH or postgresql://…)`);
  }
  const p = path.resolve(cwd, url);
  return { dialect: 'sqlite', path: p, display: `sqlite:${p}` };
}
