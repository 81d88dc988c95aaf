import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseDbUrl } from '../../src/store/url.js';

describe('database URLs', () => {
  it('reads SQLAlchemy-style SQLite URLs the way Python users write them', () => {
    expect(parseDbUrl('sqlite:///rel/x.db', '/work')).toMatchObject({ dialect: 'sqlite', path: '/work/rel/x.db' });
    expect(parseDbUrl('sqlite:////abs/x.db', '/work')).toMatchObject({ dialect: 'sqlite', path: '/abs/x.db' });
    expect(parseDbUrl('sqlite:data/x.db', '/work')).toMatchObject({ dialect: 'sqlite', path: path.resolve('/work', 'data/x.db') });
    expect(parseDbUrl('sqlite:/tmp/x.db', '/work')).toMatchObject({ dialect: 'sqlite', path: '/tmp/x.db' });
    expect(parseDbUrl('./x.sqlite', '/work')).toMatchObject({ dialect: 'sqlite', path: '/work/x.sqlite' });
  });

  it('accepts both PostgreSQL schemes and hides the password when displayed', () => {
    const t = parseDbUrl('postgresql://user:s3cret@db.example:5432/cowrie');
    expect(t.dialect).toBe('postgres');
    expect(t.display).toBe('postgresql://user:***@db.example:5432/cowrie');
    expect(parseDbUrl('postgres://u@h/db').dialect).toBe('postgres');
  });

  it('rejects unusable values with a one-line UsageError', () => {
    for (const bad of ['', 'mysql://x/y', 'sqlite:', 'sqlite://host/x.db', 'postgresql://']) {
      expect(() => parseDbUrl(bad)).toThrow(UsageError);
    }
  });
});
