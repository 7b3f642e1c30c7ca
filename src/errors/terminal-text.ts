/**
 * Characters a person must never be shown raw: C0 controls, DEL, C1 controls,
 * and the direction marks and overrides (U+061C, U+200E/F, U+202A–E,
 * U+2066–9) that make 「…‮gpj.p12」 show as 「…21p.jpg」. As a character-class
 * body, for names that may not hold them (`ca/file-name.ts`) and for text on
 * its way to a terminal (below).
 */
export const HIDDEN_CHARACTERS = '\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';

const HIDDEN = new RegExp(`[${HIDDEN_CHARACTERS}]`, 'g');

/**
 * Text on its way to a terminal from someone else's hands (the audit trail's
 * database, a client's certificate, a scanned server): each hidden character
 * is shown as `\xNN` / `\u{…}`, so an escape sequence cannot erase a TAMPERED
 * line, conceal what follows, or print a false verdict.
 */
export function terminalText(s: unknown): string {
  return String(s).replace(HIDDEN, (c) => {
    const cp = c.charCodeAt(0);
    return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16).toUpperCase()}}`;
  });
}
