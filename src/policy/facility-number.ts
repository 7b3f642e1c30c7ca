import { malformed } from '../errors/index.js';

/**
 * 医療機関番号 (10 digits): 2 prefecture (01–47) + 1 点数表 (1 医科, 3 歯科,
 * 4 調剤, 6 訪問看護) + 7 医療機関コード, whose last digit is a Luhn-style
 * check digit over the first nine (weights 2,1,2,1,… from the right).
 * See shared reference identifiers.md; worked example 0110113719.
 */
export type FacilityNumber = string & { readonly __brand: 'FacilityNumber' };

export const SCORE_TABLES: Record<string, string> = { '1': '医科', '3': '歯科', '4': '調剤', '6': '訪問看護' };

export function checkDigit(nineDigits: string): number {
  let sum = 0;
  for (let i = 0; i < nineDigits.length; i++) {
    const digit = nineDigits.charCodeAt(nineDigits.length - 1 - i) - 48;
    const product = digit * (i % 2 === 0 ? 2 : 1);
    sum += product > 9 ? product - 9 : product;
  }
  return (10 - (sum % 10)) % 10;
}

/** Validates and brands a facility number; the error says which rule it broke. */
export function parseFacilityNumber(input: string): FacilityNumber {
  const s = input.trim();
  if (!/^\d{10}$/.test(s)) {
    throw malformed('FACILITY_NUMBER_FORMAT', `facility number "${s}" must be exactly 10 digits (医療機関番号は10桁の数字です)`, {
      ja: `医療機関番号「${s}」は10桁の数字で入力してください。`,
    });
  }
  const prefecture = Number(s.slice(0, 2));
  if (prefecture < 1 || prefecture > 47) {
    throw malformed('FACILITY_NUMBER_PREFECTURE', `facility number ${s}: prefecture code ${s.slice(0, 2)} is not 01–47`, {
      ja: `医療機関番号 ${s} の都道府県番号 ${s.slice(0, 2)} が 01〜47 ではありません。`,
    });
  }
  if (!SCORE_TABLES[s[2]!]) {
    throw malformed('FACILITY_NUMBER_TABLE', `facility number ${s}: the third digit (点数表番号) must be 1, 3, 4 or 6, not ${s[2]}`, {
      ja: `医療機関番号 ${s} の点数表番号（3桁目）は 1・3・4・6 のいずれかです。`,
    });
  }
  const expected = checkDigit(s.slice(0, 9));
  if (expected !== Number(s[9])) {
    throw malformed('FACILITY_NUMBER_CHECK_DIGIT', `facility number ${s}: the check digit is wrong (a typo?); check the number on the facility's documents`, {
      ja: `医療機関番号 ${s} の検証番号が一致しません。番号を確認してください。`,
    });
  }
  return s as FacilityNumber;
}

export function isFacilityNumber(s: string): boolean {
  try {
    parseFacilityNumber(s);
    return true;
  } catch {
    return false;
  }
}
