import { createHash, createPublicKey, KeyObject } from 'node:crypto';
import { malformed, SekishoError } from '../errors/index.js';
import { spkiDer } from './keys.js';
import { encodeExtensions, readExtensions, splitExtensions, type ExtensionValues, type ExtensionView } from './extensions.js';
import { decodeName, type NameAttribute } from './name.js';
import { SIGNATURE_ALGORITHM_DER, SIGNATURE_ALGORITHM_OIDS, type SignatureAlgorithm, type Signer } from './signer.js';
import { children, contentBytes, contextExplicit, decodeOid, decodeTime, encodeLength, integerFromUnsigned, readTlv, sequence, time, tlvBytes, TAG } from './der.js';

/** What goes into a TBSCertificate (RFC 5280 §4.1.2). Names are DER, kept byte-exact. */
export interface TbsInput {
  /** Unsigned big-endian serial bytes (positive, first byte 0x01..0x7f). */
  serial: Buffer;
  signatureAlgorithm: SignatureAlgorithm;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** The subject's public key, or its DER SubjectPublicKeyInfo. */
  publicKey: KeyObject | Buffer;
  extensions: ExtensionValues;
}

const VERSION_V3 = contextExplicit(0, Buffer.from([0x02, 0x01, 0x02]));

/**
 * ```asn1
 * TBSCertificate ::= SEQUENCE { version [0] EXPLICIT v3, serialNumber INTEGER,
 *   signature AlgorithmIdentifier, issuer Name, validity SEQUENCE { notBefore, notAfter },
 *   subject Name, subjectPublicKeyInfo, extensions [3] EXPLICIT Extensions }
 * ```
 */
export function encodeTbsCertificate(input: TbsInput): Buffer {
  const spki = Buffer.isBuffer(input.publicKey) ? input.publicKey : spkiDer(input.publicKey);
  return sequence(
    VERSION_V3,
    integerFromUnsigned(input.serial),
    SIGNATURE_ALGORITHM_DER[input.signatureAlgorithm],
    input.issuer,
    sequence(time(input.notBefore), time(input.notAfter)),
    input.subject,
    spki,
    contextExplicit(3, encodeExtensions(input.extensions)),
  );
}

/**
 * ```asn1
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
 * ```
 * Signs the exact TBS bytes with the signer; the signature algorithm must be
 * the one the TBS names.
 */
export async function signTbs(tbs: Buffer, signer: Signer): Promise<{ der: Buffer; signature: Buffer }> {
  const signature = Buffer.from(await signer.sign(tbs));
  const algorithm = SIGNATURE_ALGORITHM_DER[signer.algorithm];
  const bitString = Buffer.concat([Buffer.from([TAG.BIT_STRING]), encodeLength(signature.length + 1), Buffer.from([0]), signature]);
  const body = Buffer.concat([tbs, algorithm, bitString]);
  return { der: Buffer.concat([Buffer.from([TAG.SEQUENCE]), encodeLength(body.length), body]), signature };
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
  spki: Buffer;
  publicKey: KeyObject;
  extensions: ExtensionView;
}

const ALGORITHM_BY_OID = new Map<string, SignatureAlgorithm>(
  Object.entries(SIGNATURE_ALGORITHM_OIDS).map(([k, v]) => [v, k as SignatureAlgorithm]),
);

/** Reads a DER TBSCertificate linearly (no object model: this runs once per issuance). */
export function describeTbs(der: Buffer, offset = 0, known?: { spki: Buffer; key: KeyObject }): CertificateView {
  const top = readTlv(der, offset);
  if (top.tag !== TAG.SEQUENCE) throw malformed('CERTIFICATE_MALFORMED', 'a TBSCertificate must be a SEQUENCE');
  const f = children(der, top);
  const at = f[0]?.tag === 0xa0 ? 1 : 0;
  const [serial, sigAlg, issuer, validity, subject, spki] = f.slice(at, at + 6);
  if (!serial || !sigAlg || !issuer || !validity || !subject || !spki || serial.tag !== TAG.INTEGER) {
    throw malformed('CERTIFICATE_MALFORMED', 'the TBSCertificate lacks a required field');
  }
  const [algOid] = children(der, sigAlg);
  const [nb, na] = children(der, validity);
  if (!algOid || !nb || !na) throw malformed('CERTIFICATE_MALFORMED', 'the TBSCertificate has a malformed algorithm or validity');
  const extField = f.slice(at + 6).find((t) => t.tag === 0xa3);
  const sigOid = decodeOid(contentBytes(der, algOid));
  const spkiBytes = tlvBytes(der, spki);
  return {
    serialHex: contentBytes(der, serial).toString('hex').replace(/^(00)+(?=.)/, ''),
    issuer: decodeName(tlvBytes(der, issuer)),
    subject: decodeName(tlvBytes(der, subject)),
    subjectDer: tlvBytes(der, subject),
    issuerDer: tlvBytes(der, issuer),
    notBefore: decodeTime(nb.tag, contentBytes(der, nb)),
    notAfter: decodeTime(na.tag, contentBytes(der, na)),
    signatureAlgorithmOid: sigOid,
    signatureAlgorithm: ALGORITHM_BY_OID.get(sigOid),
    spki: spkiBytes,
    publicKey: known && known.spki.equals(spkiBytes) ? known.key : createPublicKey({ key: spkiBytes, format: 'der', type: 'spki' }),
    extensions: readExtensions(extField ? splitExtensions(der, extField.start) : []),
  };
}

export function describeCertificate(der: Buffer): CertificateView {
  try {
    const top = readTlv(der, 0);
    return describeTbs(der, top.start);
  } catch (e) {
    if (e instanceof SekishoError && e.code === 'CERTIFICATE_MALFORMED') throw e;
    throw malformed('CERTIFICATE_MALFORMED', 'the data is not a DER X.509 certificate', { cause: e });
  }
}

/** The subject Name of a certificate, byte-exact (for issuer fields and CRLs). */
export function subjectNameDer(certDer: Buffer): Buffer {
  const cert = readTlv(certDer, 0);
  const [tbs] = children(certDer, cert);
  if (!tbs) throw malformed('CERTIFICATE_MALFORMED', 'the certificate has no TBSCertificate');
  const fields = children(certDer, tbs);
  // [0] version, serial, signature, issuer, validity, subject
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[offset + 4];
  if (!subject) throw malformed('CERTIFICATE_MALFORMED', 'the certificate has no subject');
  return tlvBytes(certDer, subject);
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
