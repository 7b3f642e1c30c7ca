import { createHash, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { CertificateAuthority } from '../ca/index.js';
import { operatorActor } from '../ca/index.js';
import { forbidden, unauthorized } from '../errors/index.js';
import type { OperatorRecord } from '../store/index.js';

/** Who is signed in: the operator's row, its certificate's fingerprint, and the actor its audit events carry. */
export interface SignedInOperator extends OperatorRecord {
  /** SHA-256 of the presented certificate's DER (hex): CSRF tokens are bound to it. */
  fingerprint: string;
  /** `operator:<name>/<serial>` */
  actor: string;
}

/**
 * The certificate a request came with: the TLS handshake already required and
 * verified it against this CA's chain (`requestCert`, `rejectUnauthorized`); the
 * socket is asked again so that nothing else (a header, a cookie) can stand in.
 */
export function peerCertificateOf(socket: unknown): Buffer | undefined {
  const s = socket as TLSSocket | undefined;
  if (!s || typeof s.getPeerCertificate !== 'function' || !s.authorized) return undefined;
  const raw = s.getPeerCertificate(false)?.raw;
  return raw && raw.length ? raw : undefined;
}

/**
 * Signs in the holder of `der`, live against the store on every request: the
 * certificate must be one this CA issued with the operator profile, stored with
 * exactly these bytes, not revoked and not expired, and held by an active
 * operator. A facility's or a device's certificate from the same CA, a revoked
 * operator, or a certificate the store does not know gets no console.
 */
export async function signInOperator(ca: CertificateAuthority, der: Buffer | undefined, now: Date): Promise<SignedInOperator> {
  const refuse = (why: string) =>
    forbidden('OPERATOR_CERTIFICATE_REFUSED', `this certificate does not sign in to the console (${why}); use an operator certificate from "sekisho operator add"`, {
      ja: 'この証明書ではコンソールを利用できません。オペレーター証明書を使用してください。',
    });
  if (!der) throw unauthorized('OPERATOR_CERTIFICATE_MISSING', 'the console needs an operator certificate', { ja: 'オペレーター証明書が必要です。' });
  let serial: string;
  let x: X509Certificate;
  try {
    x = new X509Certificate(der);
    serial = x.serialNumber.toLowerCase().replace(/^(00)+(?=[0-9a-f])/, '');
  } catch {
    throw refuse('unreadable');
  }
  if (now < new Date(x.validFrom) || now > new Date(x.validTo)) throw refuse('outside its validity');
  const rec = await ca.certificate(serial.length % 2 ? `0${serial}` : serial);
  if (!rec || !rec.der || !rec.der.equals(der)) throw refuse('unknown to this CA');
  if (rec.profile !== 'operator') throw refuse(`a ${rec.profile} certificate`);
  if (rec.status !== 'issued') throw refuse(rec.status);
  const op = await ca.operatorBySerial(rec.serial);
  if (!op) throw refuse('no operator holds it');
  if (op.status !== 'active') throw refuse(`operator ${op.status}`);
  return { ...op, fingerprint: createHash('sha256').update(der).digest('hex'), actor: operatorActor(op) };
}
