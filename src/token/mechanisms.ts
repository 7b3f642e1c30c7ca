import { createHash } from 'node:crypto';
import type { KeyAlgorithm, SignMechanism } from './token.js';

/** The hash inside each signing mechanism. */
export const SIGN_HASH: Record<SignMechanism, 'sha256' | 'sha384'> = {
  'ecdsa-sha256': 'sha256',
  'ecdsa-sha384': 'sha384',
  'sha256-rsa-pkcs': 'sha256',
  'sha384-rsa-pkcs': 'sha384',
};

export function mechanismFits(m: SignMechanism, key: KeyAlgorithm | undefined): boolean {
  return m.startsWith('ecdsa') ? key === 'ec' : key === 'rsa';
}

/** The signing mechanism for a key algorithm and hash. */
export function signMechanismFor(key: KeyAlgorithm, hash: 'sha256' | 'sha384'): SignMechanism {
  return key === 'ec' ? (`ecdsa-${hash}` as const) : (`${hash}-rsa-pkcs` as const);
}

/** The CKA_ID sekisho gives a key: the first 16 bytes of SHA-256 over its SubjectPublicKeyInfo. */
export function keyIdFor(spki: Buffer): Buffer {
  return createHash('sha256').update(spki).digest().subarray(0, 16);
}
