import { describe, expect, it } from 'vitest';
import { escapeControl } from '../src/text.js';

describe('escapeControl', () => {
  it('keeps printable text, including non-ASCII letters', () => {
    expect(escapeControl('root / Пароль 123 ü')).toBe('root / Пароль 123 ü');
  });
  it('makes terminal control sequences visible', () => {
    expect(escapeControl('a\x1b[2Jb\nc\r\x07\x7f\x9b')).toBe('a\\x1b[2Jb\\x0ac\\x0d\\x07\\x7f\\x9b');
  });
  it('makes bidi overrides visible', () => {
    expect(escapeControl('evil\u202Etxt.exe')).toBe('evil\\u202etxt.exe');
  });
});
