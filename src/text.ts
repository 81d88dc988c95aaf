/**
 * Attacker-controlled text (usernames, commands, URLs, AS names, file names) reaches terminals
 * and log files. Control characters there can move the cursor, rewrite earlier lines or set the
 * window title, and bidi overrides can reorder what is shown, so every such character is written
 * as a visible escape instead.
 */
// C0 controls, DEL, C1 controls, and the Unicode bidi embedding/override/isolate marks.
// eslint-disable-next-line no-control-regex
const UNSAFE_FOR_TERMINAL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** `\n` → `\x0a`, ESC → `\x1b`, U+202E → `\u202e`: printable, unambiguous, reversible by eye. */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE_FOR_TERMINAL, (ch) => {
    const code = ch.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
