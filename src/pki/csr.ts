import { createPublicKey, verify, KeyObject } from 'node:crypto';
import { badRequest, malformed, SekishoError } from '../errors/index.js';
import { pemOrDer } from './certificate.js';
import { readExtensions, splitExtensions, type ExtensionView, type RawExtension } from './extensions.js';
import { decodeName, type NameAttribute } from './name.js';
import { readSubjectPublicKeyInfo } from './spki.js';
import { children, contentBytes, decodeOid, readTlv, tlvBytes, TAG } from './der.js';
import { SHA2_SIGNATURE_HASH } from './signer.js';

const EXTENSION_REQUEST_OID = '1.2.840.113549.1.9.14';

const SHA1_SIGNATURES = new Set(['1.2.840.113549.1.1.5', '1.2.840.10045.4.1', '1.3.14.3.2.29']);

/** A PKCS#10 request whose signature has been checked. */
export interface VerifiedCsr {
  der: Buffer;
  subject: NameAttribute[];
  spki: Buffer;
  publicKey: KeyObject;
  /** Extensions the requester asked for; the CA decides what it actually writes. */
  requestedExtensions: ExtensionView;
}

interface CsrParts {
  info: Buffer;
  subject: Buffer;
  spki: Buffer;
  extensions: RawExtension[];
  signatureOid: string;
  signature: Buffer;
}

/**
 * ```asn1
 * CertificationRequest ::= SEQUENCE {
 *   certificationRequestInfo SEQUENCE { version INTEGER, subject Name,
 *     subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT SET OF Attribute },
 *   signatureAlgorithm AlgorithmIdentifier, signature BIT STRING }
 * ```
 */
function splitCsr(der: Buffer): CsrParts {
  const top = readTlv(der, 0);
  if (top.tag !== TAG.SEQUENCE || top.end !== der.length) throw new Error('not one SEQUENCE');
  const [info, alg, sig] = children(der, top);
  if (!info || !alg || !sig || info.tag !== TAG.SEQUENCE || sig.tag !== TAG.BIT_STRING) throw new Error('shape');
  const [version, subject, spki, attrs] = children(der, info);
  if (!version || version.tag !== TAG.INTEGER || !subject || subject.tag !== TAG.SEQUENCE || !spki || spki.tag !== TAG.SEQUENCE) throw new Error('info');
  let extensions: RawExtension[] = [];
  if (attrs) {
    if (attrs.tag !== 0xa0) throw new Error('attributes');
    for (const attr of children(der, attrs)) {
      const [type, values] = children(der, attr);
      if (!type || type.tag !== TAG.OID || !values || values.tag !== TAG.SET) throw new Error('attribute');
      if (decodeOid(contentBytes(der, type)) === EXTENSION_REQUEST_OID) {
        const [first] = children(der, values);
        if (first) extensions = splitExtensions(der, first.offset);
      }
    }
  }
  const [algOid] = children(der, alg);
  if (!algOid || algOid.tag !== TAG.OID) throw new Error('algorithm');
  const sigBytes = contentBytes(der, sig);
  if (sigBytes[0] !== 0) throw new Error('signature bits');
  return {
    info: tlvBytes(der, info),
    subject: tlvBytes(der, subject),
    spki: tlvBytes(der, spki),
    extensions,
    signatureOid: decodeOid(contentBytes(der, algOid)),
    signature: sigBytes.subarray(1),
  };
}

/**
 * Parses a PKCS#10 CertificationRequest (RFC 2986) from PEM or DER and checks
 * its self-signature (proof of possession). Every failure is a SekishoError.
 */
export function parseCsr(input: Buffer | string): VerifiedCsr {
  const der = pemOrDer(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], 'CSR_MALFORMED', 'certificate signing request');
  let parts: CsrParts;
  let subject: NameAttribute[];
  let requestedExtensions: ExtensionView;
  try {
    parts = splitCsr(der);
    subject = decodeName(parts.subject);
    requestedExtensions = readExtensions(parts.extensions);
  } catch (e) {
    throw malformed('CSR_MALFORMED', 'the file is not a valid PKCS#10 certificate signing request (PEM or DER)', { cause: e });
  }
  if (SHA1_SIGNATURES.has(parts.signatureOid)) {
    throw badRequest('CSR_SHA1_SIGNATURE', 'the CSR is signed with SHA-1; make a new CSR signed with SHA-256 (e.g. openssl req -sha256)');
  }
  const hash = SHA2_SIGNATURE_HASH[parts.signatureOid];
  if (!hash) throw badRequest('CSR_SIGNATURE_ALGORITHM', `the CSR's signature algorithm ${parts.signatureOid} is not supported; use ECDSA or RSA with SHA-256/384`);
  let publicKey: KeyObject;
  try {
    readSubjectPublicKeyInfo(parts.spki); // strict DER; what the key may be is the CA's key policy
    publicKey = createPublicKey({ key: parts.spki, format: 'der', type: 'spki' });
  } catch (e) {
    throw badRequest('CSR_PUBLIC_KEY', 'the public key in the CSR cannot be read (unsupported or corrupt key)', { cause: e });
  }
  let ok = false;
  try {
    ok = verify(hash, parts.info, publicKey, parts.signature);
  } catch (e) {
    if (e instanceof SekishoError) throw e;
    ok = false;
  }
  if (!ok) throw badRequest('CSR_SIGNATURE_INVALID', "the CSR's signature does not verify: it was altered or not signed by its own key; make a new CSR");
  return { der, subject, spki: parts.spki, publicKey, requestedExtensions };
}
