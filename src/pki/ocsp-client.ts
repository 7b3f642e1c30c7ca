/**
 * OCSP (RFC 6960) from the relying party's side: a request for one
 * certificate (CertID with SHA-1, as every responder takes), and reading the
 * answer — its signature checked against the issuer, or against a delegated
 * responder certificate the issuer signed for OCSPSigning (§4.2.2.2). The
 * ASN.1 is in ocsp.ts.
 */
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { malformed } from '../errors/index.js';
import { children, contentBytes, contextExplicit, decodeOid, decodeTime, integerFromUnsigned, nullValue, octetString, oid, readTlv, sequence, tlvBytes, TAG, type Tlv } from './der.js';
import { ID_PKIX_OCSP_NONCE, subjectPublicKeyBits, type OcspCertStatus } from './ocsp.js';
import { reasonFromCode } from './revocation-reason.js';
import { spkiDer } from './keys.js';
import { SHA2_SIGNATURE_HASH } from './signer.js';

const ID_PKIX_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const ID_KP_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const STATUS = ['successful', 'malformedRequest', 'internalError', 'tryLater', '(4)', 'sigRequired', 'unauthorized'];

/** The DER CertID of `cert` under `issuer` (SHA-1 hashes). */
export function ocspCertId(certDer: Buffer, issuerDer: Buffer): Buffer {
  const cert = new X509Certificate(certDer);
  const issuer = new X509Certificate(issuerDer);
  const issuerName = issuerSubjectDer(issuerDer);
  const nameHash = createHash('sha1').update(issuerName).digest();
  const keyHash = createHash('sha1').update(subjectPublicKeyBits(spkiDer(issuer.publicKey))).digest();
  return sequence(sequence(oid('1.3.14.3.2.26'), nullValue()), octetString(nameHash), octetString(keyHash), integerFromUnsigned(Buffer.from(cert.serialNumber, 'hex')));
}

/**
 * A DER OCSPRequest for one certificate. With `nonce`, the request carries it
 * (id-pkix-ocsp-nonce, RFC 8954: an OCTET STRING in the extension value) and
 * an answer made for this request echoes it: an answer captured earlier
 * cannot be replayed. Without, a caching responder can answer it.
 */
export function buildOcspRequest(certDer: Buffer, issuerDer: Buffer, nonce?: Buffer): Buffer {
  const list = sequence(sequence(ocspCertId(certDer, issuerDer)));
  const extensions = nonce ? [contextExplicit(2, sequence(nonceExtension(nonce)))] : [];
  return sequence(sequence(list, ...extensions));
}

const nonceExtension = (nonce: Buffer): Buffer => sequence(oid(ID_PKIX_OCSP_NONCE), octetString(octetString(nonce)));

function issuerSubjectDer(der: Buffer): Buffer {
  // Certificate → tbsCertificate → [version], serial, signature, issuer, validity, subject
  const tbs = children(der, readTlv(der, 0))[0]!;
  const f = children(der, tbs);
  const i = f[0]!.tag === 0xa0 ? 1 : 0;
  return tlvBytes(der, f[i + 4]!);
}

export interface OcspAnswer {
  certStatus: OcspCertStatus;
  producedAt: Date;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** Who signed: the issuer itself or a delegated responder. */
  signedBy: 'issuer' | 'delegated';
  /** The request's nonce came back (`echoed`), or the answer carries none (`absent`: a cached answer, or a replayed one). */
  nonce?: 'echoed' | 'absent';
}

const fail = (what: string): never => {
  throw malformed('OCSP_RESPONSE_INVALID', `the OCSP response cannot be used: ${what}`);
};

/**
 * Reads an OCSPResponse for `certDer` (issued by `issuerDer`): checks the
 * response status, the signature, and that it answers for this CertID; with
 * `nonce` (the request's), an answer carrying another nonce is refused.
 * Every failure is OCSP_RESPONSE_INVALID with the reason.
 */
export function readOcspResponse(der: Buffer, certDer: Buffer, issuerDer: Buffer, o: { nonce?: Buffer } = {}): OcspAnswer {
  let top: Tlv;
  try {
    top = readTlv(der, 0);
  } catch {
    return fail('not DER');
  }
  const [statusTlv, bytes] = children(der, top);
  if (!statusTlv || statusTlv.tag !== TAG.ENUMERATED) return fail('no responseStatus');
  const status = contentBytes(der, statusTlv)[0] ?? 255;
  if (status !== 0) return fail(`the responder answered ${STATUS[status] ?? status}`);
  if (!bytes) return fail('no responseBytes');
  const [rb] = children(der, bytes);
  const [type, inner] = children(der, rb!);
  if (!type || decodeOid(contentBytes(der, type)) !== ID_PKIX_OCSP_BASIC || !inner) return fail('not a BasicOCSPResponse');
  const basic = contentBytes(der, inner);
  const [tbs, alg, sig, certs] = children(basic, readTlv(basic, 0));
  if (!tbs || !alg || !sig) return fail('BasicOCSPResponse fields');
  const hash = SHA2_SIGNATURE_HASH[decodeOid(contentBytes(basic, children(basic, alg)[0]!))];
  if (!hash) return fail('signature algorithm not SHA-2 RSA or ECDSA');
  const tbsDer = tlvBytes(basic, tbs);
  const signature = contentBytes(basic, sig).subarray(1);
  const issuer = new X509Certificate(issuerDer);
  let signedBy: OcspAnswer['signedBy'] | undefined;
  if (cryptoVerify(hash, tbsDer, issuer.publicKey, signature)) signedBy = 'issuer';
  else if (certs) {
    for (const c of children(basic, children(basic, certs)[0]!)) {
      const x = new X509Certificate(tlvBytes(basic, c));
      const eku = x.keyUsage ?? [];
      if (x.verify(issuer.publicKey) && eku.includes(ID_KP_OCSP_SIGNING) && cryptoVerify(hash, tbsDer, x.publicKey, signature)) signedBy = 'delegated';
    }
  }
  if (!signedBy) return fail('its signature is not the issuer\'s nor a responder\'s the issuer authorized');
  const f = children(basic, tbs);
  let i = f[0]?.tag === 0xa0 ? 1 : 0;
  i++; // responderID
  const producedAt = decodeTime(f[i]!.tag, contentBytes(basic, f[i]!));
  const responses = children(basic, f[i + 1]!);
  let nonce: OcspAnswer['nonce'];
  if (o.nonce) {
    const echoed = f[i + 2]?.tag === 0xa1 ? responseNonce(basic, f[i + 2]!) : undefined;
    // RFC 8954 wraps the nonce in an OCTET STRING inside extnValue; responders of RFC 2560's time put it there bare.
    if (echoed && !echoed.equals(octetString(o.nonce)) && !echoed.equals(o.nonce)) return fail('it answers another request (its nonce is not the one sent): an old answer replayed, or a mix-up');
    nonce = echoed ? 'echoed' : 'absent';
  }
  const wanted = ocspCertId(certDer, issuerDer);
  for (const r of responses) {
    const [id, st, thisU, next] = children(basic, r);
    if (!id || !st || !thisU || !tlvBytes(basic, id).equals(wanted)) continue;
    let certStatus: OcspCertStatus;
    if (st.tag === 0x80) certStatus = { status: 'good' };
    else if (st.tag === 0xa1) {
      const [when, reason] = children(basic, st);
      const code = reason ? contentBytes(basic, children(basic, reason)[0]!)[0] : undefined;
      const r2 = code === undefined ? undefined : reasonFromCode(code);
      certStatus = { status: 'revoked', revokedAt: decodeTime(when!.tag, contentBytes(basic, when!)), ...(r2 ? { reason: r2 } : {}) };
    } else certStatus = { status: 'unknown' };
    const nextUpdate = next?.tag === 0xa0 ? children(basic, next)[0] : undefined;
    return {
      certStatus,
      producedAt,
      thisUpdate: decodeTime(thisU.tag, contentBytes(basic, thisU)),
      ...(nextUpdate ? { nextUpdate: decodeTime(nextUpdate.tag, contentBytes(basic, nextUpdate)) } : {}),
      signedBy,
      ...(nonce ? { nonce } : {}),
    };
  }
  return fail('it does not answer for this certificate');
}

/** The nonce extension's extnValue content among responseExtensions ([1] EXPLICIT Extensions), if any. */
function responseNonce(der: Buffer, exts: Tlv): Buffer | undefined {
  const [list] = children(der, exts);
  if (!list || list.tag !== TAG.SEQUENCE) return fail('responseExtensions');
  for (const ext of children(der, list)) {
    const parts = children(der, ext);
    if (parts[0]?.tag !== TAG.OID || decodeOid(contentBytes(der, parts[0])) !== ID_PKIX_OCSP_NONCE) continue;
    const value = parts[parts.length - 1];
    if (!value || value.tag !== TAG.OCTET_STRING) return fail('the nonce extension');
    return contentBytes(der, value);
  }
  return undefined;
}
