/** PKCS#11 v2.40 token flags (CK_TOKEN_INFO.flags) that sekisho reports. */
export const CKF = {
  RNG: 0x1,
  WRITE_PROTECTED: 0x2,
  LOGIN_REQUIRED: 0x4,
  USER_PIN_INITIALIZED: 0x8,
  PROTECTED_AUTHENTICATION_PATH: 0x100,
  TOKEN_INITIALIZED: 0x400,
  USER_PIN_COUNT_LOW: 0x10000,
  USER_PIN_FINAL_TRY: 0x20000,
  USER_PIN_LOCKED: 0x40000,
  USER_PIN_TO_BE_CHANGED: 0x80000,
  SO_PIN_COUNT_LOW: 0x100000,
  SO_PIN_FINAL_TRY: 0x200000,
  SO_PIN_LOCKED: 0x400000,
  SO_PIN_TO_BE_CHANGED: 0x800000,
} as const;

export type TokenFlagName = keyof typeof CKF;

/** The names of the flags set in `flags`, e.g. ['RNG', 'LOGIN_REQUIRED', 'USER_PIN_COUNT_LOW']. */
export function flagNames(flags: number): TokenFlagName[] {
  return (Object.keys(CKF) as TokenFlagName[]).filter((n) => (flags & CKF[n]) !== 0);
}

/** The PIN counter flags for `failures` wrong PINs out of `max` allowed (COUNT_LOW after one, FINAL_TRY at max−1, LOCKED at max). */
export function pinCounterFlags(failures: number, max: number, who: 'USER' | 'SO'): number {
  if (failures <= 0) return 0;
  if (failures >= max) return CKF[`${who}_PIN_LOCKED`];
  let f = CKF[`${who}_PIN_COUNT_LOW`];
  if (failures === max - 1) f |= CKF[`${who}_PIN_FINAL_TRY`];
  return f;
}
