/**
 * Reading the fields the summaries use, as every Cowrie version wrote them: values of the wrong
 * type read as absent, and the older forms (1.x `system` instead of `protocol`, 2.0's Python bytes
 * text for the client version) are translated.
 */

export function str(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

export function nonEmpty(v: unknown): string | null {
  const s = str(v);
  return s === '' ? null : s;
}

export function baseName(v: unknown): string | null {
  const s = nonEmpty(v);
  if (s === null) return null;
  const cut = Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\'));
  const b = s.slice(cut + 1);
  return b === '' ? null : b;
}

/** The last path segment of a URL as typed (scheme optional; query and fragment dropped), or null. */
export function urlFileName(v: unknown): string | null {
  const s = nonEmpty(v);
  if (s === null) return null;
  let rest = s.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, '');
  const cut = rest.search(/[?#]/);
  if (cut !== -1) rest = rest.slice(0, cut);
  const slash = rest.indexOf('/');
  if (slash === -1) return null; // only a host: no file name in it
  return baseName(rest.slice(slash));
}

/** Cowrie 2.0 logged the client version as Python bytes text: `b'SSH-2.0-Go'`. */
export function clientVersion(v: unknown): string | null {
  const s = str(v);
  if (s === null || s.length < 3 || s[0] !== 'b') return s;
  const q = s[1];
  return (q === "'" || q === '"') && s[s.length - 1] === q ? s.slice(2, -1) : s;
}

/**
 * Cowrie 1.x events have no `protocol`; their `system` names the Twisted transport or factory
 * (`HoneyPotSSHTransport,523,1.2.3.4`, `cowrie.ssh.factory.CowrieSSHFactory`,
 * `cowrie.telnet.transport.HoneyPotTelnetFactory`, `CowrieTelnetTransport,0,1.2.3.4`).
 */
export function protocolOf(protocol: unknown, system: unknown): string | null {
  const p = nonEmpty(protocol);
  if (p !== null || typeof system !== 'string') return p;
  if (/telnet/i.test(system)) return 'telnet';
  if (/ssh/i.test(system)) return 'ssh';
  return null;
}

export function num(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}
