import { conflict, notFound, unauthorized } from '../errors/index.js';
import type { UserType } from './token.js';

/** Errors both token kinds raise, with one wording and one code each. */
export const tokenErrors = {
  pinWrong: (left: number, who: UserType) =>
    unauthorized(who === 'so' ? 'SO_PIN_WRONG' : 'PIN_WRONG', `wrong ${who === 'so' ? 'SO PIN' : 'PIN'}; ${left} ${left === 1 ? 'try' : 'tries'} left before the ${who === 'so' ? 'SO PIN locks for good' : 'token locks'}`, {
      ja: `PINが違います。あと${left}回間違えるとロックされます。`,
    }),
  /** A wrong PIN where the number of tries left is not known (a PKCS#11 module that does not say). */
  pinWrongUncounted: (who: UserType, why: string) =>
    who === 'so'
      ? unauthorized('SO_PIN_WRONG', `wrong SO PIN (${why}); the token counts wrong tries and may lock the SO PIN for good`, { ja: '管理者PIN（SO PIN）が違います。続けて間違えるとロックされます。' })
      : unauthorized('PIN_WRONG', `wrong PIN (${why}); the token counts wrong tries and may lock`, { ja: 'PINが違います。続けて間違えるとロックされます。' }),
  pinLocked: () =>
    unauthorized('PIN_LOCKED', 'the user PIN is locked after too many wrong tries; the security officer unlocks it with "sekisho token unlock" (SEKISHO_SO_PIN, SEKISHO_NEW_PIN)', {
      ja: 'PINがロックされています。管理者(SO)にロック解除を依頼してください。',
    }),
  soLocked: () =>
    unauthorized('SO_PIN_LOCKED', 'the SO PIN is locked for good after too many wrong tries; the token cannot be unlocked any more — restore a backup or have a new token issued', {
      ja: '管理者PINがロックされました。トークンの再発行が必要です。',
    }),
  notLoggedIn: (what: string) => unauthorized('TOKEN_NOT_LOGGED_IN', `${what} needs a login with the user PIN (SEKISHO_PIN)`),
  noSuchObject: (h: string) => notFound('TOKEN_OBJECT_NOT_FOUND', `the token holds no object with handle ${h}; list them with "sekisho token list"`),
  slot: (slotId: number, hint = 'a software token has one slot, 0') => notFound('TOKEN_SLOT_NOT_FOUND', `there is no slot ${slotId} (${hint})`),
};

/** An operation that was never started, or already finished (C_*Final called twice). */
export const operationEnded = () => conflict('TOKEN_OPERATION_NOT_INITIALIZED', 'this token operation has ended (or never began); start a new one');
