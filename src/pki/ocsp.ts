/**
 * OCSP (RFC 6960) for the CA's own responder: reading requests and building
 * signed BasicOCSPResponses with the DER writer. The responder is the
 * issuing CA itself (§2.2: "the CA who issued the certificate"), so no
 * delegated responder certificate is needed.
 *
 * ```asn1
 * OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
 * TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
 *                            requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
 * Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
 * CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
 *                            issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
 *
 * OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
 * ResponseBytes ::= SEQUENCE { responseType OID id-pkix-ocsp-basic, response OCTET STRING }
 * BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
 *                                  signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 * ResponseData ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
 *                             producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
 *                             responseExtensions [1] EXPLICIT Extensions OPTIONAL }
 * ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }
 * SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
 *                               nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1] EXPLICIT Extensions OPTIONAL }
 * CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
 * RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
 * ```
 */
import { createHash } from 'node:crypto';
import { malformed } from '../errors/index.js';
import { bitString, children, contentBytes, contextConstructed, contextExplicit, contextPrimitive, decodeOid, enumerated, generalizedTime, octetString, oid, readTlv, sequence, tlvBytes, TAG, type Tlv } from './der.js';
import { SIGNATURE_ALGORITHM_DER, type Signer } from './signer.js';
import { reasonCode, type RevocationReason } from './revocation-reason.js';

const ID_PKIX_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
/** id-pkix-ocsp-nonce (RFC 8954), read by the responder and sent by the client (ocsp-client.ts). */
export const ID_PKIX_OCSP_NONCE = '1.3.6.1.5.5.7.48.1.2';
/** Requests larger than this are refused before parsing (a CertID is ~70 bytes). */
export const OCSP_MAX_REQUEST = 16 * 1024;
const MAX_REQUESTS = 64;
/** A CertID's longest DER (SHA-512 hashes, a 21-byte serial, an AlgorithmIdentifier with NULL parameters: about 170 bytes). */
const MAX_CERT_ID = 256;

const HASH_OIDS: Record<string, 'sha1' | 'sha256' | 'sha384' | 'sha512'> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

export type OcspResponseStatus = 'successful' | 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';
const STATUS_CODE: Record<OcspResponseStatus, number> = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 };

export interface OcspCertId {
  /** The CertID exactly as requested (echoed in the response). */
  der: Buffer;
  hash: 'sha1' | 'sha256' | 'sha384' | 'sha512' | undefined;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Serial as lower-case hex of its content bytes, leading zero bytes dropped. */
  serialHex: string;
}

export interface OcspRequest {
  certIds: OcspCertId[];
  /** The whole nonce Extension (echoed verbatim in the response). */
  nonceExtension?: Buffer;
}

function fail(what: string, cause?: unknown): never {
  throw malformed('OCSP_REQUEST_MALFORMED', `the OCSP request is malformed: ${what}`, cause === undefined ? undefined : { cause });
}

/** The longest nonce a request may carry (RFC 9654 §2.1; RFC 8954 allowed 32); an empty one is refused too. */
export const OCSP_MAX_NONCE = 128;

/**
 * The length of the nonce in an Extension's extnValue: Nonce ::= OCTET STRING
 * inside it (RFC 9654), or, as RFC 2560-era clients sent it, the bytes themselves.
 */
function nonceLength(der: Buffer, ext: Tlv): number {
  const fields = children(der, ext);
  const value = fields[fields.length - 1];
  if (!value || value.tag !== TAG.OCTET_STRING) fail('nonce extnValue');
  const inner = contentBytes(der, value);
  if (inner.length >= 2 && inner[0] === TAG.OCTET_STRING) {
    try {
      const t = readTlv(inner, 0);
      if (t.end === inner.length) return t.end - t.start;
    } catch {
      // not a DER OCTET STRING: the raw form
    }
  }
  return inner.length;
}

function nonceOf(der: Buffer, exts: Tlv): Buffer | undefined {
  // [2] EXPLICIT Extensions
  const [seq] = children(der, exts);
  if (!seq || seq.tag !== TAG.SEQUENCE) fail('requestExtensions');
  for (const ext of children(der, seq)) {
    const [id] = children(der, ext);
    if (!id || id.tag !== TAG.OID) fail('extension');
    if (decodeOid(contentBytes(der, id)) === ID_PKIX_OCSP_NONCE) {
      // RFC 8954 / 9654: an empty or oversized nonce is malformedRequest, never echoed (the CA would sign chosen bytes).
      const n = nonceLength(der, ext);
      if (n < 1 || n > OCSP_MAX_NONCE) fail(`a ${n}-byte nonce (1–${OCSP_MAX_NONCE})`);
      return tlvBytes(der, ext);
    }
  }
  return undefined;
}

/** Parses a DER OCSPRequest (RFC 6960 §4.1.1). Every failure is OCSP_REQUEST_MALFORMED. */
export function parseOcspRequest(input: Buffer): OcspRequest {
  if (input.length === 0 || input.length > OCSP_MAX_REQUEST) fail(`${input.length} bytes`);
  const der = input;
  try {
    const top = readTlv(der, 0);
    if (top.tag !== TAG.SEQUENCE || top.end !== der.length) fail('not one SEQUENCE');
    const [tbs] = children(der, top);
    if (!tbs || tbs.tag !== TAG.SEQUENCE) fail('tbsRequest');
    const fields = children(der, tbs);
    let i = 0;
    if (fields[i]?.tag === 0xa0) i++;
    if (fields[i]?.tag === 0xa1) i++;
    const list = fields[i++];
    if (!list || list.tag !== TAG.SEQUENCE) fail('requestList');
    const exts = fields[i];
    if (exts && exts.tag !== 0xa2) fail('unexpected field in tbsRequest');
    const requests = children(der, list);
    if (requests.length === 0 || requests.length > MAX_REQUESTS) fail(`${requests.length} requests (1–${MAX_REQUESTS})`);
    const certIds = requests.map((r) => {
      if (r.tag !== TAG.SEQUENCE) fail('Request');
      const [certId] = children(der, r);
      if (!certId || certId.tag !== TAG.SEQUENCE) fail('CertID');
      const [alg, nameHash, keyHash, serial] = children(der, certId);
      if (!alg || alg.tag !== TAG.SEQUENCE || nameHash?.tag !== TAG.OCTET_STRING || keyHash?.tag !== TAG.OCTET_STRING || serial?.tag !== TAG.INTEGER) fail('CertID fields');
      const [algOid] = children(der, alg);
      if (!algOid || algOid.tag !== TAG.OID) fail('hashAlgorithm');
      const serialBytes = contentBytes(der, serial);
      if (serialBytes.length === 0 || serialBytes.length > 21) fail('serialNumber length');
      // The CertID is echoed in the signed answer: no longer than a SHA-512 CertID with parameters can be.
      if (nameHash.end - nameHash.start > 64 || keyHash.end - keyHash.start > 64 || certId.end - certId.offset > MAX_CERT_ID) fail('CertID size');
      return {
        der: Buffer.from(tlvBytes(der, certId)),
        hash: HASH_OIDS[decodeOid(contentBytes(der, algOid))],
        issuerNameHash: Buffer.from(contentBytes(der, nameHash)),
        issuerKeyHash: Buffer.from(contentBytes(der, keyHash)),
        serialHex: Buffer.from(serialBytes).toString('hex').replace(/^(00)+(?=..)/, ''),
      };
    });
    const nonce = exts ? nonceOf(der, exts) : undefined;
    return { certIds, ...(nonce ? { nonceExtension: Buffer.from(nonce) } : {}) };
  } catch (e) {
    if ((e as { code?: string }).code === 'OCSP_REQUEST_MALFORMED') throw e;
    fail('not DER', e);
  }
}

/** The subjectPublicKey bits of a SubjectPublicKeyInfo (what issuerKeyHash and byKey hash). */
export function subjectPublicKeyBits(spki: Buffer): Buffer {
  const top = readTlv(spki, 0);
  const [, bits] = children(spki, top);
  if (!bits || bits.tag !== TAG.BIT_STRING) throw malformed('SPKI_MALFORMED', 'the SubjectPublicKeyInfo has no BIT STRING');
  return Buffer.from(contentBytes(spki, bits).subarray(1));
}

/** Whether a CertID names this issuer (by its subject Name DER and SPKI). */
export function certIdMatchesIssuer(id: OcspCertId, issuerNameDer: Buffer, issuerSpki: Buffer): boolean {
  if (!id.hash) return false;
  const name = createHash(id.hash).update(issuerNameDer).digest();
  const key = createHash(id.hash).update(subjectPublicKeyBits(issuerSpki)).digest();
  return name.equals(id.issuerNameHash) && key.equals(id.issuerKeyHash);
}

export type OcspCertStatus = { status: 'good' } | { status: 'unknown' } | { status: 'revoked'; revokedAt: Date; reason?: RevocationReason };

export interface OcspSingleResponse {
  certIdDer: Buffer;
  certStatus: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate?: Date;
}

export interface OcspResponseInput {
  signer: Signer;
  /** SubjectPublicKeyInfo of the signer's certificate (ResponderID byKey is SHA-1 of its key bits). */
  responderSpki: Buffer;
  producedAt: Date;
  responses: OcspSingleResponse[];
  nonceExtension?: Buffer;
  /** DER certificates to include (the signer's own, so clients can find it). */
  certs?: Buffer[];
}

const whole = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

function certStatusDer(s: OcspCertStatus): Buffer {
  switch (s.status) {
    case 'good':
      return contextPrimitive(0, Buffer.alloc(0));
    case 'unknown':
      return contextPrimitive(2, Buffer.alloc(0));
    case 'revoked': {
      const reason = s.reason && s.reason !== 'unspecified' ? [contextExplicit(0, enumerated(reasonCode(s.reason)))] : [];
      return contextConstructed(1, [generalizedTime(whole(s.revokedAt)), ...reason]);
    }
  }
}

/** A signed, successful OCSPResponse. */
export async function buildOcspResponse(input: OcspResponseInput): Promise<Buffer> {
  const keyHash = createHash('sha1').update(subjectPublicKeyBits(input.responderSpki)).digest();
  const singles = input.responses.map((r) =>
    sequence(r.certIdDer, certStatusDer(r.certStatus), generalizedTime(whole(r.thisUpdate)), ...(r.nextUpdate ? [contextExplicit(0, generalizedTime(whole(r.nextUpdate)))] : [])),
  );
  const tbs = sequence(
    contextExplicit(2, octetString(keyHash)),
    generalizedTime(whole(input.producedAt)),
    sequence(...singles),
    ...(input.nonceExtension ? [contextExplicit(1, sequence(input.nonceExtension))] : []),
  );
  const signature = Buffer.from(await input.signer.sign(tbs));
  const basic = sequence(tbs, SIGNATURE_ALGORITHM_DER[input.signer.algorithm], bitString(signature), ...(input.certs?.length ? [contextExplicit(0, sequence(...input.certs))] : []));
  return sequence(enumerated(STATUS_CODE.successful), contextExplicit(0, sequence(oid(ID_PKIX_OCSP_BASIC), octetString(basic))));
}

/** An unsigned error OCSPResponse (malformedRequest, internalError, unauthorized, …). */
export function ocspErrorResponse(status: Exclude<OcspResponseStatus, 'successful'>): Buffer {
  return sequence(enumerated(STATUS_CODE[status]));
}
