import { malformed } from '../errors/index.js';

/**
 * Notice IDs are typed from paper: 26 characters with no look-alikes (no
 * 0/O, 1/I/l, 2/Z, 5/S, 8/B), case-insensitive, 15 random characters
 * (≈ 70 bits) plus a Luhn mod 26 check character, printed in four groups of
 * four: "KQ7M-XH3C-9TAD-FJ4R". The check character is computed over a kind
 * letter first, so a reference ID typed into the request-ID field (or the
 * reverse) fails its check, and the two are told apart.
 *
 * This module is pure (no Node built-ins): the portal's browser code
 * (web/browser/portal.ts) is bundled with it, so the page runs this very
 * noticeIdProblem() and catches a typo before the form is sent; the server
 * checks again before any attempt is spent.
 */
export const NOTICE_ID_ALPHABET = 'ACDEFGHJKLMNPQRTUVWXY34679';
const N = NOTICE_ID_ALPHABET.length;
export const NOTICE_ID_DATA_LENGTH = 15;
export type NoticeIdKind = 'request' | 'reference';
const KIND_CHAR: Record<NoticeIdKind, string> = { request: 'R', reference: 'F' };

/** Luhn mod N over the kind letter and the data characters. */
export function checkCharacter(kind: NoticeIdKind, data: string): string {
  const s = KIND_CHAR[kind] + data;
  let factor = 2;
  let sum = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const cp = NOTICE_ID_ALPHABET.indexOf(s[i]!);
    if (cp < 0) throw new Error(`not an ID character: ${s[i]}`);
    let addend = factor * cp;
    factor = factor === 2 ? 1 : 2;
    addend = Math.floor(addend / N) + (addend % N);
    sum += addend;
  }
  return NOTICE_ID_ALPHABET[(N - (sum % N)) % N]!;
}

/** A uniform integer in [0, max) from the platform's CSPRNG (WebCrypto getRandomValues; rejection sampling, no modulo bias). */
export function randomBelow(max: number): number {
  if (!Number.isSafeInteger(max) || max < 1 || max > 2 ** 32) throw new RangeError(`randomBelow: max must be an integer in 1..2^32, not ${max}`);
  const limit = 2 ** 32 - (2 ** 32 % max);
  const word = new Uint32Array(1);
  for (;;) {
    globalThis.crypto.getRandomValues(word);
    if (word[0]! < limit) return word[0]! % max;
  }
}

/** A fresh ID of a kind, grouped for printing. */
export function generateNoticeId(kind: NoticeIdKind, random: (max: number) => number = randomBelow): string {
  let data = '';
  for (let i = 0; i < NOTICE_ID_DATA_LENGTH; i++) data += NOTICE_ID_ALPHABET[random(N)];
  return groupNoticeId(data + checkCharacter(kind, data));
}

export function groupNoticeId(compact: string): string {
  return compact.match(/.{1,4}/g)!.join('-');
}

export type NoticeIdProblem = 'empty' | 'length' | 'characters' | 'check' | 'swapped';

/** Upper-cases and drops spaces and hyphens (as people type them); does not judge. */
export function compactNoticeId(input: string): string {
  return input.normalize('NFKC').toUpperCase().replace(/[\s\-‐-―ー－]+/g, '');
}

/** What is wrong with a typed ID, or undefined when it is well-formed with a right check character. */
export function noticeIdProblem(kind: NoticeIdKind, input: string): NoticeIdProblem | undefined {
  const c = compactNoticeId(input);
  if (c.length === 0) return 'empty';
  if (c.length !== NOTICE_ID_DATA_LENGTH + 1) return 'length';
  for (const ch of c) if (!NOTICE_ID_ALPHABET.includes(ch)) return 'characters';
  const data = c.slice(0, -1);
  if (checkCharacter(kind, data) === c.slice(-1)) return undefined;
  const other: NoticeIdKind = kind === 'request' ? 'reference' : 'request';
  return checkCharacter(other, data) === c.slice(-1) ? 'swapped' : 'check';
}

const FIELD = { request: { en: 'request ID', ja: '申請ID' }, reference: { en: 'reference ID', ja: '参照ID' } } as const;

/**
 * Parses a typed ID into its compact form, or throws NOTICE_ID_MISTYPED
 * (NOTICE_IDS_SWAPPED) with a message that says what to re-check. No server
 * attempt is counted for a mistyped ID.
 */
export function parseNoticeId(kind: NoticeIdKind, input: string): string {
  if (typeof input !== 'string' || input.length > 200) throw mistyped(kind, 'length');
  const problem = noticeIdProblem(kind, input);
  if (problem) throw mistyped(kind, problem);
  return compactNoticeId(input);
}

function mistyped(kind: NoticeIdKind, problem: NoticeIdProblem) {
  const f = FIELD[kind];
  if (problem === 'swapped') {
    return malformed('NOTICE_IDS_SWAPPED', `the ${f.en} looks like the other ID of the notice: the request ID and reference ID seem to be swapped`, {
      ja: `${f.ja}の欄に、もう一方のIDが入力されているようです。申請IDと参照IDを入れ替えてください。`,
    });
  }
  const what: Record<Exclude<NoticeIdProblem, 'swapped'>, [string, string]> = {
    empty: [`enter the ${f.en} printed on the notice`, `通知書に記載された${f.ja}を入力してください。`],
    length: [`the ${f.en} has 16 characters (four groups of four); check it against the notice`, `${f.ja}は16文字（4文字×4組）です。通知書と照らし合わせてください。`],
    characters: [
      `the ${f.en} uses only the letters and digits ${NOTICE_ID_ALPHABET} (never 0, O, 1, I, 2, Z, 5, S, 8, B); check it against the notice`,
      `${f.ja}に使われない文字が含まれています（0, O, 1, I, 2, Z, 5, S, 8, B は使われません）。通知書と照らし合わせてください。`,
    ],
    check: [`the ${f.en} has a typo (its check character does not match); check each character against the notice`, `${f.ja}に入力ミスがあります。通知書と1文字ずつ照らし合わせてください。`],
  };
  const [en, ja] = what[problem];
  return malformed('NOTICE_ID_MISTYPED', en, { ja });
}
