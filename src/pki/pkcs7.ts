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
import { malformed } from '../errors/index.js';
import { children, contentBytes, contextConstructed, contextExplicit, decodeOid, expectTlv, integerFromUnsigned, oid, sequence, set, TAG, tlvBytes } from './der.js';

const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const ID_DATA = '1.2.840.113549.1.7.1';

/** DER certs-only SignedData of the certificates, in the order given (leaf first). */
export function certsOnlyPkcs7(certs: readonly Buffer[]): Buffer {
  const signedData = sequence(integerFromUnsigned(Buffer.from([1])), set(), sequence(oid(ID_DATA)), contextConstructed(0, certs), set());
  return sequence(oid(ID_SIGNED_DATA), contextExplicit(0, signedData));
}

/** The certificates of a certs-only SignedData (what EST simpleenroll / simplereenroll / cacerts return), in their order. */
export function certificatesFromPkcs7(der: Buffer): Buffer[] {
  const top = expectTlv(der, 0, TAG.SEQUENCE, 'ContentInfo');
  const [type, content] = children(der, top);
  if (!type || type.tag !== TAG.OID || decodeOid(contentBytes(der, type)) !== ID_SIGNED_DATA || !content || content.tag !== 0xa0) {
    throw malformed('PKCS7_INVALID', 'the answer is not a PKCS#7 SignedData (RFC 5652)');
  }
  const sd = expectTlv(der, content.start, TAG.SEQUENCE, 'SignedData', content.end);
  const certs = children(der, sd).find((t) => t.tag === 0xa0);
  if (!certs) throw malformed('PKCS7_NO_CERTIFICATES', 'the PKCS#7 SignedData holds no certificates');
  return children(der, certs).map((t) => Buffer.from(tlvBytes(der, t)));
}
