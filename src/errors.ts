/**
 * Errors meant for users: one line, an exit code, no stack trace.
 * Thrown from anywhere; only src/cli/main.ts catches, prints and exits.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

/** Bad flags, bad config, or an unusable database: exit 2. */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** Query parameters that carry a credential (libpq's `password`/`sslpassword`, API keys, tokens). */
const SECRET_PARAM = /pass|secret|token|key|auth|credential|signature|sig$/i;
const HIDDEN = '***';

/**
 * A URL safe to print: the password of the userinfo and every credential-like query parameter
 * become `***`. Parsed with the WHATWG URL parser, so an `@` inside the password cannot push the
 * rest of it into view; text that does not parse is redacted by pattern instead.
 */
export function redactUrl(url: string): string {
  let u: URL | null = null;
  try {
    u = new URL(url);
  } catch {
    // Not a URL: fall through to the pattern redaction.
  }
  if (u && /^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    if (u.password) u.password = HIDDEN;
    for (const name of [...new Set(u.searchParams.keys())]) {
      if (SECRET_PARAM.test(name)) u.searchParams.set(name, HIDDEN);
    }
    return u.toString();
  }
  return url
    // scheme://user:anything-up-to-the-last-@@host: hide too much rather than too little.
    .replace(/(\/\/[^/?#:@]*:)[^@]*@/g, `$1${HIDDEN}@`)
    .replace(/([?&;][^=&#\s]*(?:pass|secret|token|key|auth|credential)[^=&#\s]*=)[^&#\s]*/gi, `$1${HIDDEN}`);
}

/** Every URL inside free text (an error message, a log line) with its credentials hidden. */
export function redactUrlsIn(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (m) => {
    // Punctuation that ends the sentence is not part of the URL.
    const tail = /[:;,.)\]]+$/.exec(m)?.[0] ?? '';
    return redactUrl(m.slice(0, m.length - tail.length)) + tail;
  });
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
