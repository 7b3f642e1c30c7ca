/**
 * Text from the audit trail on its way to a terminal. What is printed comes
 * from the database (someone who can write it chooses every field) or from a
 * client's certificate: control characters (C0, DEL, C1) and the bidirectional
 * controls are shown as `\xNN` / `\u{…}`, so an escape sequence cannot erase
 * a TAMPERED line, conceal what follows, or print a false "intact" (as the
 * scanner's text report does for what a server sends).
 */
// eslint-disable-next-line no-control-regex
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function terminalText(s: unknown): string {
  return String(s).replace(HIDDEN, (c) => {
    const cp = c.charCodeAt(0);
    return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16).toUpperCase()}}`;
  });
}
