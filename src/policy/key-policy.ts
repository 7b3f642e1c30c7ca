import type { KeyObject } from 'node:crypto';
import { badRequest, isSekishoError } from '../errors/index.js';
import { CURVE_OIDS, curveName, ecPointProblem, readSubjectPublicKeyInfo, spkiDer } from '../pki/index.js';

/**
 * Which subject keys sekisho certifies and its gateway accepts: only the
 * SubjectPublicKeyInfo forms every verifier accepts (RFC 5480, RFC 8017,
 * CA/Browser Forum BR §6.1.5–6.1.6) within CRYPTREC GL-3001 high security.
 *
 * - RSA: rsaEncryption with NULL parameters; modulus 2048–8192 bits (above is
 *   refused as a denial-of-service guard), odd, without prime factors below
 *   752; public exponent odd and 2^16+1 ≤ e ≤ 2^256−1. The BR rule, not
 *   "exactly 65537": every verifier accepts that range, it refuses e = 3
 *   (Bleichenbacher's 2006 forgery against lax verifiers), and a key from an
 *   HSM with another large odd exponent is still usable.
 * - EC: id-ecPublicKey with a namedCurve OID, P-256 or P-384 only (RFC 5480
 *   §2.1.1: specifiedCurve and implicitCurve MUST NOT be used; OpenSSL's
 *   `verify` refuses them, yet Node reports such a key with the same curve
 *   name as a named one, so the DER is read, not the KeyObject); the point
 *   uncompressed and on the curve.
 */
export const KEY_POLICY = {
  rsaMinBits: 2048,
  rsaMaxBits: 8192,
  rsaMinExponent: 65537n,
  rsaMaxExponent: 2n ** 256n - 1n,
  /** BR §6.1.6 recommends checking for factors below 752. */
  rsaSmallFactorBound: 752,
  ecCurves: ['P-256', 'P-384'] as const,
} as const;

/** Why a subject key is refused: a stable code and a sentence; `weak` when only its strength is short (a dated exception may relax that). */
export interface KeyProblem {
  code: string;
  message: string;
  ja?: string;
  weak: boolean;
}

const SMALL_PRIMES: readonly bigint[] = (() => {
  const out: bigint[] = [];
  for (let n = 2; n < KEY_POLICY.rsaSmallFactorBound; n++) if (out.every((p) => BigInt(n) % p !== 0n)) out.push(BigInt(n));
  return out;
})();

const bitLength = (n: bigint) => (n === 0n ? 0 : n.toString(2).length);

/** The problem with a subject key (DER SubjectPublicKeyInfo, or a key object), or undefined when it is acceptable. */
export function subjectKeyProblem(key: Buffer | KeyObject): KeyProblem | undefined {
  let view;
  try {
    view = readSubjectPublicKeyInfo(Buffer.isBuffer(key) ? key : spkiDer(key));
  } catch (e) {
    return { code: 'KEY_MALFORMED', message: isSekishoError(e) ? e.message : 'the public key cannot be read', weak: false };
  }
  const refuse = (code: string, message: string, ja?: string): KeyProblem => ({ code, message, weak: code === 'KEY_TOO_WEAK' || code === 'KEY_CURVE_UNSUPPORTED', ...(ja ? { ja } : {}) });
  if (view.kind === 'rsa') {
    if (view.parameters !== 'null') return refuse('KEY_RSA_PARAMETERS', `the RSA key's algorithm parameters are ${view.parameters === 'absent' ? 'absent' : 'not NULL'}; rsaEncryption requires NULL (RFC 3279 §2.3.1, RFC 8017)`);
    if (view.negative) return refuse('KEY_RSA_MODULUS', 'the RSA modulus or exponent is a negative INTEGER');
    const bits = bitLength(view.modulus);
    if (bits < KEY_POLICY.rsaMinBits) {
      return refuse('KEY_TOO_WEAK', `RSA key of ${bits} bits is too weak; use at least ${KEY_POLICY.rsaMinBits} bits (CRYPTREC)`, `RSA ${bits} ビットの鍵は弱すぎます。${KEY_POLICY.rsaMinBits} ビット以上の鍵を使ってください。`);
    }
    if (bits > KEY_POLICY.rsaMaxBits) return refuse('KEY_TOO_LARGE', `RSA key of ${bits} bits is larger than the ${KEY_POLICY.rsaMaxBits} bits accepted`);
    if (view.modulus % 2n === 0n) return refuse('KEY_RSA_MODULUS', 'the RSA modulus is even; it cannot be a product of two large primes');
    const factor = SMALL_PRIMES.find((p) => view.modulus % p === 0n);
    if (factor) return refuse('KEY_RSA_MODULUS', `the RSA modulus is divisible by ${factor} (CA/B Forum BR §6.1.6); make a new key`);
    const e = view.exponent;
    if (e % 2n === 0n || e < KEY_POLICY.rsaMinExponent || e > KEY_POLICY.rsaMaxExponent) {
      return refuse('KEY_RSA_EXPONENT', `the RSA public exponent ${e < 1_000_000n ? e : `of ${bitLength(e)} bits`} is not accepted; it must be odd and from 65537 to 2^256−1 (CA/B Forum BR §6.1.6); make a new key with the usual exponent 65537`, 'RSA 鍵の公開指数が不正です。公開指数 65537 で鍵を作り直してください。');
    }
    return undefined;
  }
  if (view.kind === 'ec') {
    if (view.parameters !== 'namedCurve') {
      return refuse('KEY_EC_EXPLICIT_PARAMETERS', `the EC key carries ${view.parameters === 'specifiedCurve' ? 'explicit curve parameters (specifiedCurve)' : `${view.parameters} parameters`} instead of a named curve; RFC 5480 §2.1.1 allows only namedCurve (e.g. openssl ecparam -name prime256v1 -param_enc named_curve)`, '楕円曲線鍵に曲線パラメーターが明示的に含まれています。名前付き曲線（P-256 など）で鍵を作り直してください。');
    }
    const name = curveName(view.curveOid);
    if (!name || !(KEY_POLICY.ecCurves as readonly string[]).includes(name)) {
      return refuse('KEY_CURVE_UNSUPPORTED', `elliptic curve ${name ?? view.curveOid} is not accepted; use P-256 or P-384`, `楕円曲線 ${name ?? view.curveOid} は使えません。P-256・P-384 のいずれかを使ってください。`);
    }
    const bad = ecPointProblem(CURVE_OIDS[name as keyof typeof CURVE_OIDS], view.point);
    return bad ? refuse('KEY_EC_POINT_INVALID', `the EC public key is not acceptable: ${bad} (RFC 5480 §2.2, SEC 1 §3.2.2)`) : undefined;
  }
  return refuse('KEY_TYPE_UNSUPPORTED', `only RSA (rsaEncryption) and ECDSA (id-ecPublicKey) keys are accepted, not ${view.algorithmOid}`);
}

/**
 * Throws a `badRequest` naming the rule when a subject key is not acceptable.
 * Give the DER SubjectPublicKeyInfo as received (a CSR's, a certificate's):
 * a key object re-encodes it and hides the form it came in.
 */
export function checkSubjectKey(key: Buffer | KeyObject): void {
  const p = subjectKeyProblem(key);
  if (p) throw badRequest(p.code, p.message, p.ja ? { ja: p.ja } : {});
}
