/**
 * The CPU side of issuance, free of the store and of threads: read the
 * request's key (from a CSR, checking its proof of possession, or as given),
 * build the TBS certificate with a fresh serial, lint it against its profile,
 * and sign a linted TBS (checking the signature). The issuer runs these on
 * the main thread, or the issuance pool's workers run them (issuance-worker.ts):
 * the same functions either way, so the rules live here once.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { badRequest, internal } from '../errors/index.js';
import {
  describeTbs,
  encodeName,
  encodeTbsCertificate,
  keyIdentifierOfSpki,
  parseCsr,
  signTbs,
  spkiDer,
  SIGNATURE_HASH,
  type CertificateView,
  type ExtensionValues,
  type NameAttribute,
  type Signer,
} from '../pki/index.js';
import { checkSubjectKey, keyUsageFor, lintCertificate, type CertificateProfile } from '../policy/index.js';
import { revocationPointers, type RevocationUrls } from './revocation-pointers.js';
import { newSerial } from './serial.js';

/** The subject's key: given (already checked by registration), or a CSR still to be parsed and verified. */
export type SubjectKeySource = { publicKey: KeyObject; spki?: Buffer; csr?: undefined } | { csr: Buffer; publicKey?: undefined; spki?: undefined };

/** What the draft needs of a decided request. */
export interface DraftRequest {
  profile: CertificateProfile;
  subject: NameAttribute[];
  notBefore: Date;
  notAfter: Date;
  subjectAltName?: { dns: string[]; ip: string[] };
}

/** The facts of the signing CA that go into its children. */
export interface IssuerFacts {
  algorithm: Signer['algorithm'];
  subjectDer: Buffer;
  keyId: Buffer;
  /** Absent for the self-signed root. */
  notAfter?: Date;
}

export interface CertificateDraft {
  tbs: Buffer;
  view: CertificateView;
  serial: Buffer;
}

/**
 * The subject key of a request. A CSR is parsed and its self-signature
 * checked (CSR_* codes), then the key is held to the key policy, as
 * registration does for a key given directly.
 */
export function subjectKeyOf(source: SubjectKeySource): { publicKey: KeyObject; spki: Buffer } {
  if (source.csr !== undefined) {
    const csr = parseCsr(source.csr);
    checkSubjectKey(csr.spki);
    return { publicKey: csr.publicKey, spki: csr.spki };
  }
  return { publicKey: source.publicKey, spki: source.spki ?? spkiDer(source.publicKey) };
}

/** Builds the TBS with a fresh serial and runs every lint of its profile; throws CERTIFICATE_LINT_FAILED with all problems. */
export function draftCertificate(
  req: DraftRequest,
  key: { publicKey: KeyObject; spki: Buffer },
  issuer: IssuerFacts,
  o: { urls?: RevocationUrls; random?: ((n: number) => Buffer) | undefined } = {},
): CertificateDraft {
  const p = req.profile;
  const spki = key.spki;
  const subjectKeyId = keyIdentifierOfSpki(spki);
  const selfSigned = issuer.notAfter === undefined;
  const pointers = revocationPointers(o.urls ?? {}, p);
  const extensions: ExtensionValues = {
    basicConstraints: p.ca ? { ca: true, ...(p.pathLength !== undefined ? { pathLength: p.pathLength } : {}) } : { ca: false },
    keyUsage: keyUsageFor(p, spki),
    ...(p.extendedKeyUsage.length ? { extendedKeyUsage: p.extendedKeyUsage } : {}),
    ...(req.subjectAltName ? { subjectAltName: req.subjectAltName } : {}),
    subjectKeyIdentifier: subjectKeyId,
    authorityKeyIdentifier: selfSigned ? subjectKeyId : issuer.keyId,
    ...(pointers.crl ? { crlDistributionPoints: [pointers.crl] } : {}),
    ...(pointers.ocsp ? { ocspUrls: [pointers.ocsp] } : {}),
    ...(pointers.caIssuers ? { caIssuersUrls: [pointers.caIssuers] } : {}),
  };
  const serial = newSerial(o.random);
  const subjectDer = encodeName(req.subject);
  const tbs = encodeTbsCertificate({
    serial,
    signatureAlgorithm: issuer.algorithm,
    issuer: selfSigned ? subjectDer : issuer.subjectDer,
    subject: subjectDer,
    notBefore: req.notBefore,
    notAfter: req.notAfter,
    publicKey: spki,
    extensions,
  });
  const view = describeTbs(tbs, 0, { spki, key: key.publicKey.type === 'public' ? key.publicKey : createPublicKey(key.publicKey) });
  const problems = lintCertificate(view, p, {
    ...(issuer.notAfter ? { issuerNotAfter: issuer.notAfter } : {}),
    issuerKeyIdentifier: selfSigned ? subjectKeyId : issuer.keyId,
    revocationUrlsConfigured: Boolean(pointers.crl),
  });
  if (problems.length) {
    throw badRequest('CERTIFICATE_LINT_FAILED', `the ${p.name} certificate would break its profile: ${problems.map((x) => `${x.lint}: ${x.problem}`).join('; ')}`);
  }
  return { tbs, view, serial };
}

/** Signs a TBS and checks the signature with the signer's public key before the certificate leaves. */
export async function signCheckedTbs(tbs: Buffer, signer: Signer): Promise<Buffer> {
  const { der, signature } = await signTbs(tbs, signer);
  if (!verify(SIGNATURE_HASH[signer.algorithm], tbs, signer.publicKey, signature)) {
    throw internal('SIGNATURE_CHECK_FAILED', 'the signer produced a signature that does not verify; check the CA key or token');
  }
  return der;
}
