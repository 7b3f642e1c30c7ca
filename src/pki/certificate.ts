import { createHash, createPublicKey, KeyObject, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate, Name, SubjectPublicKeyInfo, TBSCertificate, Validity, Version } from '@peculiar/asn1-x509';
import { malformed } from '../errors/index.js';
import { spkiDer } from './keys.js';
import { encodeExtensions, readExtensions, type ExtensionValues, type ExtensionView } from './extensions.js';
import { decodeName, nameFromAsn, type NameAttribute } from './name.js';
import { SIGNATURE_ALGORITHM_DER, SIGNATURE_ALGORITHM_OIDS, type SignatureAlgorithm, type Signer } from './signer.js';
import { readTlv, children } from './der-reader.js';
import { encodeLength } from './der.js';

/** What goes into a TBSCertificate (RFC 5280 §4.1.2). Names are DER, kept byte-exact. */
export interface TbsInput {
  /** Unsigned big-endian serial bytes (positive, first byte 0x01..0x7f). */
  serial: Buffer;
  signatureAlgorithm: SignatureAlgorithm;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  extensions: ExtensionValues;
}

/**
 * ```asn1
 * TBSCertificate ::= SEQUENCE { version [0] v3, serialNumber, signature,
 *   issuer, validity, subject, subjectPublicKeyInfo, extensions [3] }
 * ```
 */
export function encodeTbsCertificate(input: TbsInput): Buffer {
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(input.serial).buffer,
    signature: AsnConvert.parse(SIGNATURE_ALGORITHM_DER[input.signatureAlgorithm], AlgorithmIdentifier),
    issuer: AsnConvert.parse(input.issuer, Name),
    validity: new Validity({ notBefore: input.notBefore, notAfter: input.notAfter }),
    subject: AsnConvert.parse(input.subject, Name),
    subjectPublicKeyInfo: AsnConvert.parse(spkiDer(input.publicKey), SubjectPublicKeyInfo),
    extensions: encodeExtensions(input.extensions),
  });
  return Buffer.from(AsnConvert.serialize(tbs));
}

/**
 * ```asn1
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
 * ```
 * Signs the exact TBS bytes with the signer; the signature algorithm must be
 * the one the TBS names.
 */
export async function signTbs(tbs: Buffer, signer: Signer): Promise<Buffer> {
  const signature = Buffer.from(await signer.sign(tbs));
  const algorithm = SIGNATURE_ALGORITHM_DER[signer.algorithm];
  const bitString = Buffer.concat([Buffer.from([0x03]), encodeLength(signature.length + 1), Buffer.from([0]), signature]);
  const body = Buffer.concat([tbs, algorithm, bitString]);
  return Buffer.concat([Buffer.from([0x30]), encodeLength(body.length), body]);
}

/** A parsed view of a certificate (or of a TBS about to be signed), for linting and display. */
export interface CertificateView {
  serialHex: string;
  issuer: NameAttribute[];
  subject: NameAttribute[];
  subjectDer: Buffer;
  issuerDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  signatureAlgorithmOid: string;
  signatureAlgorithm: SignatureAlgorithm | undefined;
  publicKey: KeyObject;
  extensions: ExtensionView;
}

const ALGORITHM_BY_OID = new Map<string, SignatureAlgorithm>(
  Object.entries(SIGNATURE_ALGORITHM_OIDS).map(([k, v]) => [v, k as SignatureAlgorithm]),
);

function viewOfTbs(tbs: TBSCertificate): CertificateView {
  return {
    serialHex: Buffer.from(tbs.serialNumber).toString('hex').replace(/^(00)+(?=.)/, ''),
    issuer: nameFromAsn(tbs.issuer),
    subject: nameFromAsn(tbs.subject),
    subjectDer: Buffer.from(AsnConvert.serialize(tbs.subject)),
    issuerDer: Buffer.from(AsnConvert.serialize(tbs.issuer)),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    signatureAlgorithmOid: tbs.signature.algorithm,
    signatureAlgorithm: ALGORITHM_BY_OID.get(tbs.signature.algorithm),
    publicKey: createPublicKey({ key: Buffer.from(AsnConvert.serialize(tbs.subjectPublicKeyInfo)), format: 'der', type: 'spki' }),
    extensions: readExtensions(tbs.extensions),
  };
}

export function describeTbs(tbsDer: Buffer): CertificateView {
  return viewOfTbs(AsnConvert.parse(tbsDer, TBSCertificate));
}

export function describeCertificate(der: Buffer): CertificateView {
  try {
    return viewOfTbs(AsnConvert.parse(der, Certificate).tbsCertificate);
  } catch (e) {
    throw malformed('CERTIFICATE_MALFORMED', 'the data is not a DER X.509 certificate', { cause: e });
  }
}

/** The subject Name of a certificate, byte-exact (for issuer fields and CRLs). */
export function subjectNameDer(certDer: Buffer): Buffer {
  const cert = readTlv(certDer, 0, 'CERTIFICATE_MALFORMED');
  const [tbs] = children(certDer, cert, 'CERTIFICATE_MALFORMED');
  if (!tbs) throw malformed('CERTIFICATE_MALFORMED', 'the certificate has no TBSCertificate');
  const fields = children(certDer, tbs, 'CERTIFICATE_MALFORMED');
  // [0] version, serial, signature, issuer, validity, subject
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[offset + 4];
  if (!subject) throw malformed('CERTIFICATE_MALFORMED', 'the certificate has no subject');
  return certDer.subarray(subject.start, subject.end);
}

export function subjectOf(certDer: Buffer): NameAttribute[] {
  return decodeName(subjectNameDer(certDer));
}

export function fingerprint(der: Buffer, hash: 'sha256' | 'sha1' = 'sha256'): string {
  return createHash(hash).update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

export function certificateToPem(der: Buffer): string {
  return toPem(der, 'CERTIFICATE');
}

export function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${b64.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * Reads one PEM block with one of `labels`, or returns the input when it is
 * already DER (starts with a SEQUENCE tag).
 */
export function pemOrDer(input: Buffer | string, labels: readonly string[], code: string, what: string): Buffer {
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  if (buf.length > 0 && buf[0] === 0x30) return buf;
  const text = buf.toString('latin1');
  for (const label of labels) {
    const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(text);
    if (m) {
      const body = m[1]!.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length === 0) {
        throw malformed(code, `the ${what} PEM block is not valid base64`);
      }
      return Buffer.from(body, 'base64');
    }
  }
  throw malformed(code, `no ${what} found: expected PEM (${labels.map((l) => `BEGIN ${l}`).join(' or ')}) or DER`);
}

/** Every PEM certificate in a text, in order. */
export function certificatesFromPem(text: string): Buffer[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

/** Node's own parser as a second opinion (used by tests and the CA's self-check). */
export function nodeCertificate(der: Buffer): X509Certificate {
  return new X509Certificate(der);
}
