import { malformed } from '../errors/index.js';
import { children, contentBytes, decodeOid, readTlv, TAG } from './der.js';

export const RSA_ENCRYPTION_OID = '1.2.840.113549.1.1.1';
export const EC_PUBLIC_KEY_OID = '1.2.840.10045.2.1';
export const CURVE_OIDS = { 'P-256': '1.2.840.10045.3.1.7', 'P-384': '1.3.132.0.34', 'P-521': '1.3.132.0.35' } as const;

/**
 * What a DER SubjectPublicKeyInfo says, byte for byte, as policy needs it:
 * the form of the algorithm parameters (which OpenSSL and Node hide: an EC key
 * with explicit curve parameters reports the same curve name as a named one).
 *
 * ```asn1
 * SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
 * AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }
 * RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }        -- RFC 8017 A.1.1
 * ECParameters ::= CHOICE { namedCurve OBJECT IDENTIFIER,                      -- RFC 5480 §2.1.1:
 *   implicitCurve NULL, specifiedCurve SpecifiedECDomain }                     -- only namedCurve allowed
 * ```
 */
export type SubjectPublicKeyInfoView =
  | {
      kind: 'rsa';
      /** RFC 3279 §2.3.1 / RFC 8017: must be NULL. */
      parameters: 'null' | 'absent' | 'other';
      /** Unsigned value; `negative` says the DER INTEGER had its sign bit set. */
      modulus: bigint;
      exponent: bigint;
      negative: boolean;
    }
  | {
      kind: 'ec';
      parameters: 'namedCurve' | 'specifiedCurve' | 'implicitCurve' | 'absent' | 'other';
      curveOid?: string;
      /** The ECPoint octets (SEC 1 §2.3.3): 04‖X‖Y uncompressed, 02/03‖X compressed. */
      point: Buffer;
    }
  | { kind: 'other'; algorithmOid: string };

/** Reads a DER SubjectPublicKeyInfo strictly (one SEQUENCE, nothing after it); throws SPKI_MALFORMED. */
export function readSubjectPublicKeyInfo(der: Buffer): SubjectPublicKeyInfoView {
  try {
    const top = readTlv(der, 0);
    if (top.tag !== TAG.SEQUENCE || top.end !== der.length) throw new Error('not one SEQUENCE');
    const [alg, key, extra] = children(der, top);
    if (!alg || alg.tag !== TAG.SEQUENCE || !key || key.tag !== TAG.BIT_STRING || extra) throw new Error('shape');
    const [oid, params, more] = children(der, alg);
    if (!oid || oid.tag !== TAG.OID || more) throw new Error('algorithm');
    const algorithmOid = decodeOid(contentBytes(der, oid));
    const bits = contentBytes(der, key);
    if (bits[0] !== 0) throw new Error('unused bits');
    const keyBytes = bits.subarray(1);
    if (algorithmOid === RSA_ENCRYPTION_OID) {
      const seq = readTlv(keyBytes, 0);
      if (seq.tag !== TAG.SEQUENCE || seq.end !== keyBytes.length) throw new Error('RSAPublicKey');
      const [n, e, rest] = children(keyBytes, seq);
      if (!n || !e || n.tag !== TAG.INTEGER || e.tag !== TAG.INTEGER || rest) throw new Error('RSAPublicKey fields');
      const nb = contentBytes(keyBytes, n);
      const eb = contentBytes(keyBytes, e);
      const unsigned = (b: Buffer) => (b.length ? BigInt(`0x${b.toString('hex')}`) : 0n);
      return {
        kind: 'rsa',
        parameters: !params ? 'absent' : params.tag === TAG.NULL && params.end === params.start ? 'null' : 'other',
        modulus: unsigned(nb),
        exponent: unsigned(eb),
        negative: ((nb[0] ?? 0) & 0x80) !== 0 || ((eb[0] ?? 0) & 0x80) !== 0,
      };
    }
    if (algorithmOid === EC_PUBLIC_KEY_OID) {
      const parameters = !params ? 'absent' : params.tag === TAG.OID ? 'namedCurve' : params.tag === TAG.SEQUENCE ? 'specifiedCurve' : params.tag === TAG.NULL ? 'implicitCurve' : 'other';
      return { kind: 'ec', parameters, ...(params && params.tag === TAG.OID ? { curveOid: decodeOid(contentBytes(der, params)) } : {}), point: Buffer.from(keyBytes) };
    }
    return { kind: 'other', algorithmOid };
  } catch (e) {
    throw malformed('SPKI_MALFORMED', 'the public key (SubjectPublicKeyInfo) is not valid DER', { cause: e });
  }
}

/** Short Weierstrass curves y² = x³ − 3x + b over GF(p) (FIPS 186-4 D.1.2, SEC 2), cofactor 1. */
const CURVES: Record<string, { name: string; bytes: number; p: bigint; b: bigint }> = {
  [CURVE_OIDS['P-256']]: {
    name: 'P-256',
    bytes: 32,
    p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  },
  [CURVE_OIDS['P-384']]: {
    name: 'P-384',
    bytes: 48,
    p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  },
};

export function curveName(oid: string | undefined): string | undefined {
  return Object.entries(CURVE_OIDS).find(([, o]) => o === oid)?.[0];
}

/**
 * What is wrong with an EC point on a named curve (P-256 or P-384), or
 * undefined: it must be uncompressed (RFC 5480 §2.2: compressed MAY be
 * refused, and is by many verifiers), of the curve's length, with both
 * coordinates in the field and on the curve (SEC 1 §3.2.2.1 partial
 * validation; with cofactor 1 that is full validation).
 */
export function ecPointProblem(curveOid: string, point: Buffer): string | undefined {
  const c = CURVES[curveOid];
  if (!c) return `no point check for curve ${curveOid}`;
  if (point[0] === 0x02 || point[0] === 0x03) return 'the point is in compressed form; use the uncompressed form (04‖X‖Y)';
  if (point[0] !== 0x04) return `the point's first octet 0x${(point[0] ?? 0).toString(16).padStart(2, '0')} is not 04 (uncompressed)`;
  if (point.length !== 1 + 2 * c.bytes) return `the point is ${point.length} octets, not ${1 + 2 * c.bytes} for ${c.name}`;
  const x = BigInt(`0x${point.subarray(1, 1 + c.bytes).toString('hex')}`);
  const y = BigInt(`0x${point.subarray(1 + c.bytes).toString('hex')}`);
  if (x >= c.p || y >= c.p) return 'a coordinate of the point is not below the field prime';
  const mod = (v: bigint) => ((v % c.p) + c.p) % c.p;
  if (mod(y * y) !== mod(x * x * x - 3n * x + c.b)) return `the point is not on ${c.name}`;
  return undefined;
}
