/**
 * PKCS#10 (RFC 2986) request building, pure (Uint8Array, @peculiar/asn1-*):
 * shared by the server's buildCsr (csr-builder.ts, signing through a Signer)
 * and the portal's browser code (signing with WebCrypto).
 *
 * ```asn1
 * CertificationRequest ::= SEQUENCE {
 *   certificationRequestInfo SEQUENCE { version INTEGER (0), subject Name,
 *     subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute },
 *   signatureAlgorithm AlgorithmIdentifier, signature BIT STRING }
 * ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }
 * ```
 */
import { AsnConvert, AsnIntegerArrayBufferConverter, AsnProp, AsnPropTypes, BitString } from '@peculiar/asn1-schema';
import { Attribute } from '@peculiar/asn1-x509';
import { malformed } from '../errors/index.js';
import { hexBytes, SIGNATURE_ALGORITHM_DER_HEX, type SignatureAlgorithm } from './signature-algorithms.js';

class CertificationRequestInfo {
  @AsnProp({ type: AsnPropTypes.Integer })
  version = 0;

  /** The encoded Name, kept byte for byte. */
  @AsnProp({ type: AsnPropTypes.Any })
  subject: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Any })
  subjectPKInfo: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: Attribute, repeated: 'set', context: 0, implicit: true })
  attributes: Attribute[] = [];
}

class CertificationRequest {
  @AsnProp({ type: AsnPropTypes.Any })
  certificationRequestInfo: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Any })
  signatureAlgorithm: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: BitString })
  signature: BitString = new BitString();
}

class EcdsaSigValue {
  @AsnProp({ type: AsnPropTypes.Integer, converter: AsnIntegerArrayBufferConverter })
  r: ArrayBuffer = new ArrayBuffer(0);

  @AsnProp({ type: AsnPropTypes.Integer, converter: AsnIntegerArrayBufferConverter })
  s: ArrayBuffer = new ArrayBuffer(0);
}

/** A copy of exactly `b`'s bytes (a Buffer's own slice() shares its pool). */
const exact = (b: Uint8Array): ArrayBuffer => new Uint8Array(b).buffer;

/** An unsigned big-endian magnitude as the content of a DER INTEGER (minimal, with a 00 before a high bit). */
function integerContent(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const b = bytes.subarray(i);
  if (((b[0] ?? 0) & 0x80) === 0) return b;
  const out = new Uint8Array(b.length + 1);
  out.set(b, 1);
  return out;
}

/** WebCrypto's and PKCS#11's ECDSA signature (r ‖ s, IEEE P1363) as the DER ECDSA-Sig-Value X.509 carries. */
export function ecdsaSignatureToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0) throw malformed('ECDSA_SIGNATURE_INVALID', `an ECDSA signature r‖s has an even, non-zero length, not ${raw.length}`);
  const half = raw.length / 2;
  const v = new EcdsaSigValue();
  v.r = exact(integerContent(raw.subarray(0, half)));
  v.s = exact(integerContent(raw.subarray(half)));
  return new Uint8Array(AsnConvert.serialize(v));
}

/** The DER certificationRequestInfo (what is signed) for an encoded subject Name and SubjectPublicKeyInfo; no attributes. */
export function certificationRequestInfo(subjectDer: Uint8Array, spkiDer: Uint8Array): Uint8Array {
  const info = new CertificationRequestInfo();
  info.subject = exact(subjectDer);
  info.subjectPKInfo = exact(spkiDer);
  return new Uint8Array(AsnConvert.serialize(info));
}

/**
 * A signed PKCS#10 request: `sign` gets the DER certificationRequestInfo and
 * returns the X.509 signature value (DER ECDSA-Sig-Value for EC).
 */
export async function buildCsrWith(
  subjectDer: Uint8Array,
  spkiDer: Uint8Array,
  algorithm: SignatureAlgorithm,
  sign: (info: Uint8Array) => Promise<Uint8Array>,
): Promise<Uint8Array> {
  const info = certificationRequestInfo(subjectDer, spkiDer);
  const signature = await sign(info);
  const csr = new CertificationRequest();
  csr.certificationRequestInfo = exact(info);
  csr.signatureAlgorithm = exact(hexBytes(SIGNATURE_ALGORITHM_DER_HEX[algorithm]));
  csr.signature = new BitString(exact(signature));
  return new Uint8Array(AsnConvert.serialize(csr));
}

/** The encoded empty Name (SEQUENCE {}): the portal's requests leave the subject to the CA. */
export const EMPTY_NAME_DER = new Uint8Array([0x30, 0x00]);
