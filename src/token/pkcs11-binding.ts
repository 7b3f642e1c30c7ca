/**
 * The pkcs11js binding and what every part of the bridge shares: loading it,
 * turning Cryptoki return values into sekisho errors, attribute helpers.
 */
import { createHmac, randomBytes, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as P from 'pkcs11js';
import { badRequest, conflict, internal, notFound, type SekishoError } from '../errors/index.js';
import { describePublicKey } from '../pki/index.js';
import { operationEnded, tokenErrors } from './token-errors.js';
import type { ObjectClass } from './token.js';

export type Pkcs11js = typeof P;

const PIN_DIGEST_KEY = randomBytes(32);
/** A keyed digest of a PIN, for comparing PINs within this process (never stored, never shown). */
export const pinDigest = (pin: string): Buffer => createHmac('sha256', PIN_DIGEST_KEY).update(pin, 'utf8').digest();
let binding: Pkcs11js | undefined;
export function pkcs11js(): Pkcs11js {
  if (!binding) {
    try {
      binding = createRequire(import.meta.url)('pkcs11js') as Pkcs11js;
    } catch (e) {
      throw internal('PKCS11_BINDING_MISSING', `the pkcs11js binding is not installed or did not build (${(e as Error).message.split('\n')[0]}); run npm install`);
    }
  }
  return binding;
}

export const EC_PARAMS: Record<string, Buffer> = {
  'ecdsa-p256': Buffer.from('06082a8648ce3d030107', 'hex'),
  'ecdsa-p384': Buffer.from('06052b81040022', 'hex'),
};
export const CURVE_OF_PARAMS: Record<string, 'P-256' | 'P-384'> = { '06082a8648ce3d030107': 'P-256', '06052b81040022': 'P-384' };

export const b64u = (b: Buffer) => b.toString('base64url');
export const unb64u = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');
export const str = (s: string) => s.replace(/[\s\u0000]+$/, '');

export function numberOf(h: Buffer): number {
  return Number(h.readBigUInt64LE(0));
}

/** The CK_RV of a failed call (pkcs11js puts it in .code, or only in the message for some functions). */
export function ckr(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  if (typeof c === 'number' && c !== 0) return c;
  const m = /CKR_[A-Z_]+:(\d+)/.exec(String((e as Error)?.message ?? ''));
  return m ? Number(m[1]) : undefined;
}

/** A Cryptoki return value as a sekisho error. */
export function mapError(e: unknown, doing: string): SekishoError {
  const p = pkcs11js();
  const code = ckr(e);
  const name = (e as Error).message?.split(':')[0] ?? 'error';
  switch (code) {
    case p.CKR_PIN_INCORRECT:
      return tokenErrors.pinWrongUncounted('user', doing);
    case p.CKR_PIN_LOCKED:
      return tokenErrors.pinLocked();
    case p.CKR_PIN_LEN_RANGE:
      return badRequest('PIN_TOO_SHORT', `the token refuses the PIN's length (${doing}); see its minimum with "sekisho token info"`);
    case p.CKR_SLOT_ID_INVALID:
      return notFound('TOKEN_SLOT_NOT_FOUND', `the module has no such slot (${doing}); list the slots with "sekisho token info --module PATH"`);
    case p.CKR_TOKEN_NOT_PRESENT:
    case p.CKR_TOKEN_NOT_RECOGNIZED:
      return notFound('TOKEN_NOT_PRESENT', `no token in the slot (${doing}); insert the token or initialize it`);
    case p.CKR_USER_NOT_LOGGED_IN:
      return tokenErrors.notLoggedIn(doing);
    case p.CKR_MECHANISM_INVALID:
    case p.CKR_MECHANISM_PARAM_INVALID:
    case p.CKR_KEY_TYPE_INCONSISTENT:
      return badRequest('TOKEN_MECHANISM_INVALID', `the token does not offer this mechanism for this key (${doing})`);
    case p.CKR_KEY_FUNCTION_NOT_PERMITTED:
      return badRequest('TOKEN_KEY_FUNCTION_NOT_PERMITTED', `the key may not be used for this (${doing})`);
    case p.CKR_OBJECT_HANDLE_INVALID:
    case p.CKR_KEY_HANDLE_INVALID:
      return notFound('TOKEN_OBJECT_NOT_FOUND', `the token holds no such object (${doing})`);
    case p.CKR_ATTRIBUTE_SENSITIVE:
      return badRequest('TOKEN_ATTRIBUTE_SENSITIVE', `the token will not reveal a sensitive attribute (${doing})`);
    case p.CKR_FUNCTION_NOT_SUPPORTED:
      return badRequest('TOKEN_FUNCTION_NOT_SUPPORTED', `the PKCS#11 module does not support this function (${doing})`);
    case p.CKR_OPERATION_ACTIVE:
      return conflict('TOKEN_OPERATION_ACTIVE', `another operation of this kind is still running in the session (${doing}); finish it first`);
    case p.CKR_OPERATION_NOT_INITIALIZED:
      return operationEnded();
    case p.CKR_DATA_LEN_RANGE:
      return badRequest('TOKEN_DATA_LEN_RANGE', `the data is too long for this mechanism and key (${doing})`);
    case p.CKR_ENCRYPTED_DATA_INVALID:
    case p.CKR_ENCRYPTED_DATA_LEN_RANGE:
      return badRequest('TOKEN_DECRYPT_FAILED', 'the data does not decrypt with this key (wrong key, mechanism or damaged data)');
    default:
      return internal('PKCS11_ERROR', `the PKCS#11 module failed ${doing}: ${name}`, { cause: e });
  }
}

export function guard<T>(doing: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (ckr(e) !== undefined) throw mapError(e, doing);
    if ((e as SekishoError).name === 'SekishoError') throw e;
    throw internal('PKCS11_ERROR', `the PKCS#11 module failed ${doing}: ${(e as Error).message}`, { cause: e });
  }
}

export const CLASS_OF: Record<ObjectClass, () => number> = {
  certificate: () => pkcs11js().CKO_CERTIFICATE,
  'public-key': () => pkcs11js().CKO_PUBLIC_KEY,
  'private-key': () => pkcs11js().CKO_PRIVATE_KEY,
  data: () => pkcs11js().CKO_DATA,
};

export function publicKeyTemplate(key: KeyObject): P.Template {
  const p = pkcs11js();
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty === 'EC') {
    const d = describePublicKey(key);
    const point = Buffer.concat([Buffer.from([0x04]), unb64u(jwk.x), unb64u(jwk.y)]);
    return [
      { type: p.CKA_KEY_TYPE, value: p.CKK_EC },
      { type: p.CKA_EC_PARAMS, value: EC_PARAMS[d.keyType ?? '']! },
      { type: p.CKA_EC_POINT, value: Buffer.concat([Buffer.from([0x04, point.length]), point]) },
    ];
  }
  return [
    { type: p.CKA_KEY_TYPE, value: p.CKK_RSA },
    { type: p.CKA_MODULUS, value: unb64u(jwk.n) },
    { type: p.CKA_PUBLIC_EXPONENT, value: unb64u(jwk.e) },
  ];
}

let ckmNames: Map<number, string> | undefined;
/** The CKM_* name pkcs11js knows for a mechanism type. */
export function bindingMechanismName(type: number): string | undefined {
  if (!ckmNames) {
    ckmNames = new Map();
    for (const [k, v] of Object.entries(pkcs11js())) if (k.startsWith('CKM_') && typeof v === 'number' && !ckmNames.has(v)) ckmNames.set(v, k);
  }
  return ckmNames.get(type);
}
