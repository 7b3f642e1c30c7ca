import { createPublicKey, verify, KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { Extensions } from '@peculiar/asn1-x509';
import { badRequest, malformed, SekishoError } from '../errors/index.js';
import { pemOrDer } from './certificate.js';
import { readExtensions, type ExtensionView } from './extensions.js';
import { nameFromAsn, type NameAttribute } from './name.js';
import { children, readTlv } from './der-reader.js';

const EXTENSION_REQUEST_OID = '1.2.840.113549.1.9.14';

/** Signature algorithms accepted on a CSR's proof of possession, and their hash. */
const CSR_SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};
const SHA1_SIGNATURES = new Set(['1.2.840.113549.1.1.5', '1.2.840.10045.4.1', '1.3.14.3.2.29']);

/** A PKCS#10 request whose signature has been checked. */
export interface VerifiedCsr {
  der: Buffer;
  subject: NameAttribute[];
  publicKey: KeyObject;
  /** Extensions the requester asked for; the CA decides what it actually writes. */
  requestedExtensions: ExtensionView;
}

/**
 * Parses a PKCS#10 CertificationRequest (RFC 2986) from PEM or DER and checks
 * its self-signature (proof of possession). Every failure is a SekishoError.
 */
export function parseCsr(input: Buffer | string): VerifiedCsr {
  const der = pemOrDer(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], 'CSR_MALFORMED', 'certificate signing request');
  let csr: CertificationRequest;
  let infoDer: Buffer;
  try {
    const outer = readTlv(der, 0, 'CSR_MALFORMED');
    if (outer.end !== der.length) throw malformed('CSR_MALFORMED', 'the CSR has trailing data after its DER structure');
    const [info] = children(der, outer, 'CSR_MALFORMED');
    if (!info) throw malformed('CSR_MALFORMED', 'the CSR is empty');
    infoDer = der.subarray(info.start, info.end);
    csr = AsnConvert.parse(der, CertificationRequest);
  } catch (e) {
    if (e instanceof SekishoError) throw e;
    throw malformed('CSR_MALFORMED', 'the file is not a PKCS#10 certificate signing request (PEM or DER)', { cause: e });
  }
  const sigOid = csr.signatureAlgorithm.algorithm;
  if (SHA1_SIGNATURES.has(sigOid)) {
    throw badRequest('CSR_SHA1_SIGNATURE', 'the CSR is signed with SHA-1; make a new CSR signed with SHA-256 (e.g. openssl req -sha256)');
  }
  const hash = CSR_SIGNATURE_HASHES[sigOid];
  if (!hash) throw badRequest('CSR_SIGNATURE_ALGORITHM', `the CSR's signature algorithm ${sigOid} is not supported; use ECDSA or RSA with SHA-256/384`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo)), format: 'der', type: 'spki' });
  } catch (e) {
    throw badRequest('CSR_PUBLIC_KEY', 'the public key in the CSR cannot be read (unsupported or corrupt key)', { cause: e });
  }
  let ok = false;
  try {
    ok = verify(hash, infoDer, publicKey, Buffer.from(csr.signature));
  } catch {
    ok = false;
  }
  if (!ok) throw badRequest('CSR_SIGNATURE_INVALID', "the CSR's signature does not verify: it was altered or not signed by its own key; make a new CSR");
  let requestedExtensions: ExtensionView = { present: [] };
  try {
    for (const attr of csr.certificationRequestInfo.attributes) {
      if (attr.type === EXTENSION_REQUEST_OID && attr.values[0]) {
        requestedExtensions = readExtensions(AsnConvert.parse(attr.values[0], Extensions));
      }
    }
  } catch (e) {
    throw malformed('CSR_MALFORMED', 'the extension request inside the CSR is corrupt', { cause: e });
  }
  return { der, subject: nameFromAsn(csr.certificationRequestInfo.subject), publicKey, requestedExtensions };
}
