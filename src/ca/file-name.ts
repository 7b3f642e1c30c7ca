import { HIDDEN_CHARACTERS } from '../errors/index.js';

/** Characters no facility name may hold (it becomes a certificate's O= and a delivery file's name). */
export const NAME_CONTROL_CHARACTERS = HIDDEN_CHARACTERS;

const UNSAFE_IN_FILE_NAMES = new RegExp(`[\\\\/:*?"<>|${NAME_CONTROL_CHARACTERS}]`, 'g');

/** File-name-safe facility name (keeps Japanese, drops path and control characters). Pure: the portal's browser code names its downloads with it too. */
export function safeFileName(name: string): string {
  return name.normalize('NFC').replace(UNSAFE_IN_FILE_NAMES, '_').replace(/\s+/g, '_').slice(0, 60) || 'facility';
}
