import type { KeyObject } from 'node:crypto';
import { badRequest } from '../errors/index.js';
import { describePublicKey } from '../pki/index.js';

/**
 * Which subject keys sekisho certifies (CRYPTREC GL-3001 high-security:
 * RSA ≥ 2048, ECDSA ≥ 256 bits on NIST curves). RSA above 8192 bits is refused
 * as a denial-of-service guard.
 */
export const KEY_POLICY = {
  rsaMinBits: 2048,
  rsaMaxBits: 8192,
  ecCurves: ['prime256v1', 'secp384r1', 'secp521r1'],
} as const;

/** Throws a `badRequest` naming the rule when a public key is not acceptable. */
export function checkSubjectKey(key: KeyObject): void {
  const d = describePublicKey(key);
  if (d.algorithm === 'rsa') {
    if (d.bits < KEY_POLICY.rsaMinBits) {
      throw badRequest('KEY_TOO_WEAK', `RSA key of ${d.bits} bits is too weak; use at least ${KEY_POLICY.rsaMinBits} bits (CRYPTREC)`, {
        ja: `RSA ${d.bits} ビットの鍵は弱すぎます。${KEY_POLICY.rsaMinBits} ビット以上の鍵を使ってください。`,
      });
    }
    if (d.bits > KEY_POLICY.rsaMaxBits) throw badRequest('KEY_TOO_LARGE', `RSA key of ${d.bits} bits is larger than the ${KEY_POLICY.rsaMaxBits} bits accepted`);
    return;
  }
  if (d.algorithm === 'ec') {
    if (!(KEY_POLICY.ecCurves as readonly string[]).includes(d.curve ?? '')) {
      throw badRequest('KEY_CURVE_UNSUPPORTED', `elliptic curve ${d.curve} is not accepted; use P-256, P-384 or P-521`, {
        ja: `楕円曲線 ${d.curve} は使えません。P-256・P-384・P-521 のいずれかを使ってください。`,
      });
    }
    return;
  }
  throw badRequest('KEY_TYPE_UNSUPPORTED', 'only RSA and ECDSA keys are accepted');
}
