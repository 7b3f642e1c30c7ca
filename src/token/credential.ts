/**
 * A credential in a token: a private key, its public key and its certificate,
 * tied together by one CKA_ID (keyIdFor: derived from the public key). Keys
 * under one label may be several — the current one and its successor during a
 * renewal — and are told apart by their ids until the old one is removed.
 * These functions work the same on both token kinds, through TokenSession.
 */
import { X509Certificate } from 'node:crypto';
import { badRequest, notFound } from '../errors/index.js';
import { buildCsr, describeCertificate, spkiDer, subjectNameDer, type KeyType } from '../pki/index.js';
import { TokenSigner } from './signer.js';
import type { ObjectHandle, TokenSession } from './token.js';

export interface TokenCredential {
  label: string | undefined;
  id: Buffer;
  privateKey: ObjectHandle;
  /** Absent for a key that has no certificate yet (a renewal in progress, or one interrupted). */
  certificate?: { handle: ObjectHandle; der: Buffer; notBefore: Date; notAfter: Date; subject: string; serial: string; matchesKey: boolean };
}

const isCa = (der: Buffer) => {
  try {
    return new X509Certificate(der).ca;
  } catch {
    return false;
  }
};

/**
 * Every private key with `label` (every key when no label) and the end-entity
 * certificate sharing its id: one for the key's own public key first (an id is
 * only a tag: another tool may have put a certificate of another key under
 * it), the latest-expiring among them. Keys with their own certificate come
 * first, newest first, so every caller (the agent, the doctor) sees the same
 * credential first.
 */
export async function listCredentials(session: TokenSession, label?: string): Promise<TokenCredential[]> {
  const keys = await session.findObjects({ class: 'private-key', ...(label !== undefined ? { label } : {}) });
  const out: TokenCredential[] = [];
  for (const k of keys) {
    const a = await session.getAttributes(k);
    if (!a.id) continue;
    const c: TokenCredential = { label: a.label, id: a.id, privateKey: k };
    for (const h of await session.findObjects({ class: 'certificate', id: a.id })) {
      const der = (await session.getAttributes(h)).value;
      if (!der || isCa(der)) continue;
      const v = describeCertificate(der);
      const matchesKey = a.publicKeyInfo === undefined || spkiDer(new X509Certificate(der).publicKey).equals(a.publicKeyInfo);
      const better = !c.certificate || (matchesKey && !c.certificate.matchesKey) || (matchesKey === c.certificate.matchesKey && v.notAfter > c.certificate.notAfter);
      if (better) c.certificate = { handle: h, der, notBefore: v.notBefore, notAfter: v.notAfter, subject: new X509Certificate(der).subject.replace(/\n/g, ', '), serial: v.serialHex, matchesKey };
    }
    out.push(c);
  }
  // A key whose certificate is its own before one holding another key's (the agent never uses those), then newest.
  const own = (c: TokenCredential) => (c.certificate?.matchesKey ? 1 : 0);
  return out.sort((x, y) => own(y) - own(x) || (y.certificate?.notAfter.getTime() ?? 0) - (x.certificate?.notAfter.getTime() ?? 0));
}

/** The credential to use now: a key with a certificate valid at `now`, the latest-expiring one. */
export async function currentCredential(session: TokenSession, label: string | undefined, now = new Date()): Promise<TokenCredential> {
  const all = await listCredentials(session, label);
  const valid = all.filter((c) => c.certificate && c.certificate.matchesKey && c.certificate.notBefore <= now && c.certificate.notAfter > now);
  if (valid[0]) return valid[0];
  const what = label === undefined ? 'the token' : `the key "${label}"`;
  if (all.some((c) => c.certificate && !c.certificate.matchesKey)) {
    throw badRequest('TOKEN_CERTIFICATE_KEY_MISMATCH', `the certificate stored under ${what} in the token is for another key (its public key differs); store the key's own certificate with "sekisho token cert", or import the PKCS#12 again`, {
      ja: 'トークン内の証明書が秘密鍵と対応していません。正しい証明書を "sekisho token cert" で格納するか、PKCS#12 を取り込み直してください。',
    });
  }
  if (all.some((c) => c.certificate)) {
    throw badRequest('TOKEN_CERTIFICATE_EXPIRED', `every certificate of ${what} in the token is outside its validity; enroll again with a new notice`, {
      ja: 'トークン内の証明書の有効期限が切れています。新しい発行通知書で再発行を受けてください。',
    });
  }
  throw notFound('TOKEN_CREDENTIAL_NOT_FOUND', `${what} has no certificate in the token (the PIN may be wrong, or the certificate was never stored); import the PKCS#12 with "sekisho token import"`, {
    ja: 'トークンに証明書が見つかりません。PKCS#12 を "sekisho token import" で取り込んでください。',
  });
}

/** Generates a new key pair under `label` beside the existing ones (a distinct CKA_ID, from its public key). */
export async function generateSuccessorKey(session: TokenSession, keyType: KeyType, label: string): Promise<{ privateKey: ObjectHandle; id: Buffer }> {
  const pair = await session.generateKeyPair(keyType, { label });
  const a = await session.getAttributes(pair.privateKey);
  return { privateKey: pair.privateKey, id: a.id! };
}

/** A PKCS#10 request signed inside the token by `key`, for the subject given as DER (or copied from a certificate). */
export async function tokenCsr(session: TokenSession, key: ObjectHandle, subject: { der: Buffer } | { fromCertificate: Buffer }): Promise<Buffer> {
  const signer = await TokenSigner.forHandle(session, key);
  const name = 'der' in subject ? subject.der : subjectNameDer(subject.fromCertificate);
  return buildCsr(name, signer);
}

/**
 * Stores `der` as the certificate of the key it certifies (matched by public
 * key) and removes any earlier end-entity certificate under that key's id:
 * write first, then remove, so a failure leaves the old one in place.
 */
export async function replaceCertificate(session: TokenSession, der: Buffer, label?: string): Promise<{ handle: ObjectHandle; id: Buffer; replaced: number }> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw badRequest('CERTIFICATE_INVALID', 'the file is not a certificate (PEM or DER)');
  }
  const spki = spkiDer(cert.publicKey);
  let key: { handle: ObjectHandle; id: Buffer; label: string | undefined } | undefined;
  for (const h of await session.findObjects({ class: 'private-key', ...(label !== undefined ? { label } : {}) })) {
    const a = await session.getAttributes(h);
    if (a.publicKeyInfo?.equals(spki) && a.id) key = { handle: h, id: a.id, label: a.label };
  }
  if (!key) throw notFound('TOKEN_KEY_NOT_FOUND', `the token holds no private key${label !== undefined ? ` labelled "${label}"` : ''} for this certificate's public key; it belongs to another key or token`);
  const earlier: ObjectHandle[] = [];
  for (const h of await session.findObjects({ class: 'certificate', id: key.id })) {
    const v = (await session.getAttributes(h)).value;
    if (v && !isCa(v)) earlier.push(h);
  }
  const handle = await session.createObject({ class: 'certificate', label: key.label, id: key.id, value: Buffer.from(der), private: false });
  for (const h of earlier) await session.destroyObject(h);
  return { handle, id: key.id, replaced: earlier.length };
}

/** Removes every object (private key, public key, certificates) with this CKA_ID; returns how many. */
export async function deleteById(session: TokenSession, id: Buffer): Promise<number> {
  const all = await session.findObjects({ id });
  if (!all.length) throw notFound('TOKEN_OBJECT_NOT_FOUND', `the token holds no object with id ${id.toString('hex')}; list them with "sekisho token list"`);
  for (const h of all) await session.destroyObject(h);
  return all.length;
}
