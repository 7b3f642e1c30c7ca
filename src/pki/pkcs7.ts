/**
 * The degenerate "certs-only" PKCS#7 / CMS SignedData (RFC 5652 §5, RFC 7030
 * §4.1.3 and §4.2.3): certificates and no signers, as EST returns them.
 *
 * ```asn1
 * ContentInfo ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
 * SignedData  ::= SEQUENCE { version 1, digestAlgorithms SET {}, encapContentInfo SEQUENCE { id-data },
 *                            certificates [0] IMPLICIT SET OF Certificate, signerInfos SET {} }
 * ```
 */
import { contextConstructed, contextExplicit, integerFromUnsigned, oid, sequence, set } from './der.js';

const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const ID_DATA = '1.2.840.113549.1.7.1';

/** DER certs-only SignedData of the certificates, in the order given (leaf first). */
export function certsOnlyPkcs7(certs: readonly Buffer[]): Buffer {
  const signedData = sequence(integerFromUnsigned(Buffer.from([1])), set(), sequence(oid(ID_DATA)), contextConstructed(0, certs), set());
  return sequence(oid(ID_SIGNED_DATA), contextExplicit(0, signedData));
}
