import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError, redactUrl, redactUrlsIn } from '../../src/errors.js';
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

describe('redactUrl: every credential form is hidden wherever a URL is printed', () => {
  it('hides the userinfo password, whole, even with an @ inside it', () => {
    expect(redactUrl('postgresql://user:s3cret@db.example:5432/cowrie')).toBe('postgresql://user:***@db.example:5432/cowrie');
    const at = redactUrl('postgresql://user:pa@ss@db.example/cowrie');
    expect(at).toBe('postgresql://user:***@db.example/cowrie');
    expect(parseDbUrl('postgresql://user:pa@ss@db.example/cowrie').display).not.toMatch(/pa|ss@/);
  });

  it('hides password-like query parameters (libpq password/sslpassword, API keys and tokens)', () => {
    const r = redactUrl('postgresql://u@h/db?sslmode=require&password=hunter2&sslpassword=k3y&api_key=AAA&token=T0K&apikey=Z');
    for (const secret of ['hunter2', 'k3y', 'AAA', 'T0K', '=Z']) expect(r).not.toContain(secret);
    expect(r).toContain('sslmode=require');
    expect(parseDbUrl('postgresql://u@h/db?password=hunter2').display).not.toContain('hunter2');
  });

  it('redacts by pattern what does not parse as a URL', () => {
    const r = redactUrl('postgresql://u:pa/ss@h:notaport/db?password=x1');
    expect(r).not.toMatch(/pa\/ss|x1/);
  });

  it('finds URLs inside free text and keeps the sentence around them', () => {
    expect(redactUrlsIn('GET https://u:pw@api.example/v3/x?key=K failed: timeout')).toBe('GET https://u:***@api.example/v3/x?key=*** failed: timeout');
    expect(redactUrlsIn('at postgresql://u@h/db?password=p: refused')).toBe('at postgresql://u@h/db?password=***: refused');
  });

  it('refuses postgresql:/ and postgres:/ (one slash) and postgresql:user@host instead of taking them for a file name', () => {
    for (const bad of ['postgresql:/u:pw@h/db', 'postgres:/h/db', 'postgresql:u:pw@h', 'POSTGRESQL:/h/db']) {
      expect(() => parseDbUrl(bad, '/work')).toThrow(/malformed PostgreSQL URL/);
      try {
        parseDbUrl(bad, '/work');
      } catch (err) {
        expect((err as Error).message).not.toContain('pw');
      }
    }
  });
});
