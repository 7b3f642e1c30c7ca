/**
 * Characters no facility name may hold (it becomes a certificate's O= and a
 * delivery file's name): C0 controls, DEL, C1 controls, and the direction
 * marks and overrides that make 「…‮gpj.p12」 show as 「…21p.jpg」.
 */
export const NAME_CONTROL_CHARACTERS = '\\u0000-\\u001f\\u007f-\\u009f\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';

const UNSAFE_IN_FILE_NAMES = new RegExp(`[\\\\/:*?"<>|${NAME_CONTROL_CHARACTERS}]`, 'g');

/** File-name-safe facility name (keeps Japanese, drops path and control characters). Pure: the portal's browser code names its downloads with it too. */
export function safeFileName(name: string): string {
  return name.normalize('NFC').replace(UNSAFE_IN_FILE_NAMES, '_').replace(/\s+/g, '_').slice(0, 60) || 'facility';
}
