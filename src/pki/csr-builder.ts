/**
 * Building a PKCS#10 request (RFC 2986) whose proof of possession is signed
 * through a Signer, so the key can stay in a token.
 *
 * ```asn1
 * CertificationRequest ::= SEQUENCE {
 *   certificationRequestInfo SEQUENCE { version INTEGER (0), subject Name,
 *     subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute },
 *   signatureAlgorithm AlgorithmIdentifier, signature BIT STRING }
 * ```
 */
import { bitString, contextConstructed, integerFromUnsigned, sequence } from './der.js';
import { spkiDer } from './keys.js';
import { SIGNATURE_ALGORITHM_DER, type Signer } from './signer.js';

/** DER PKCS#10 for `subjectDer` (an encoded Name, e.g. the current certificate's subject, byte for byte) and the signer's key. */
export async function buildCsr(subjectDer: Buffer, signer: Signer): Promise<Buffer> {
  const info = sequence(integerFromUnsigned(Buffer.from([0])), subjectDer, spkiDer(signer.publicKey), contextConstructed(0, []));
  const signature = await signer.sign(info);
  return sequence(info, SIGNATURE_ALGORITHM_DER[signer.algorithm], bitString(signature));
}
