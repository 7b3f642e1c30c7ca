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

/** CKM_* types sekisho names (PKCS#11 v2.40 §6); other types are named from the pkcs11js constants where known. */
export const CKM = {
  RSA_PKCS_KEY_PAIR_GEN: 0x0,
  RSA_PKCS: 0x1,
  RSA_PKCS_OAEP: 0x9,
  SHA256_RSA_PKCS: 0x40,
  SHA384_RSA_PKCS: 0x41,
  SHA512_RSA_PKCS: 0x42,
  SHA_1: 0x220,
  SHA256: 0x250,
  SHA384: 0x260,
  SHA512: 0x270,
  EC_KEY_PAIR_GEN: 0x1040,
  ECDSA: 0x1041,
  ECDSA_SHA256: 0x1044,
  ECDSA_SHA384: 0x1045,
} as const;

/** CK_MECHANISM_INFO.flags bits. */
export const MECHANISM_FLAGS = {
  HW: 0x1,
  ENCRYPT: 0x100,
  DECRYPT: 0x200,
  DIGEST: 0x400,
  SIGN: 0x800,
  VERIFY: 0x2000,
  GENERATE_KEY_PAIR: 0x10000,
} as const;

const CKM_NAMES = new Map<number, string>(Object.entries(CKM).map(([n, v]) => [v, `CKM_${n}`]));

/** `CKM_…` for a mechanism type, from sekisho's table or `extra` (e.g. the binding's constants); hex if unknown. */
export function mechanismName(type: number, extra?: (type: number) => string | undefined): string {
  return CKM_NAMES.get(type) ?? extra?.(type) ?? `0x${type.toString(16).padStart(8, '0')}`;
}

/**
 * The CKM_* types that can carry each sekisho mechanism, in order of
 * preference: the bridge hashes before CKM_ECDSA itself (SoftHSM2 offers no
 * CKM_ECDSA_SHA256), so either serves an ECDSA signature.
 */
export const MECHANISM_CARRIERS: Record<SignMechanism | 'rsa-oaep-sha1' | 'rsa-oaep-sha256' | 'sha256' | 'sha384' | 'sha512' | 'ec-key-pair-gen' | 'rsa-key-pair-gen', number[]> = {
  'ecdsa-sha256': [CKM.ECDSA_SHA256, CKM.ECDSA],
  'ecdsa-sha384': [CKM.ECDSA_SHA384, CKM.ECDSA],
  'sha256-rsa-pkcs': [CKM.SHA256_RSA_PKCS],
  'sha384-rsa-pkcs': [CKM.SHA384_RSA_PKCS],
  'rsa-oaep-sha1': [CKM.RSA_PKCS_OAEP],
  'rsa-oaep-sha256': [CKM.RSA_PKCS_OAEP],
  sha256: [CKM.SHA256],
  sha384: [CKM.SHA384],
  sha512: [CKM.SHA512],
  'ec-key-pair-gen': [CKM.EC_KEY_PAIR_GEN],
  'rsa-key-pair-gen': [CKM.RSA_PKCS_KEY_PAIR_GEN],
};

/** The sekisho mechanisms a token can perform, given its C_GetMechanismList. */
export function usableMechanisms(list: readonly number[]): (keyof typeof MECHANISM_CARRIERS)[] {
  const have = new Set(list);
  return (Object.keys(MECHANISM_CARRIERS) as (keyof typeof MECHANISM_CARRIERS)[]).filter((m) => MECHANISM_CARRIERS[m].some((t) => have.has(t)));
}
