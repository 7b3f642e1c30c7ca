import type { CertificateView } from '../pki/index.js';
import { nameValue, formatName } from '../pki/index.js';

/** Who a verified client is, as the gateway passes it on and audits it. */
export interface ClientIdentity {
  /** facility: C=JP, O=name, CN=number; device: …, OU=number, CN=device name. */
  profile: 'facility' | 'device' | 'other';
  facilityNumber?: string;
  facilityName?: string;
  deviceName?: string;
  /** RFC 4514-style subject, for logs. */
  subject: string;
  /** Lowercase hex of the positive serial. */
  serial: string;
  /** SHA-256 of the certificate DER, lowercase hex. */
  fingerprint: string;
  /** Subject of the certificate's issuer. */
  issuer: string;
  notAfter: Date;
  /** The client certificate, DER. */
  certificate: Buffer;
  /** Chain certificates above the leaf that were used to verify it (anchor excluded), DER. */
  chain: Buffer[];
  /** Accepted because its fingerprint is pinned (IHE ITI-19's second method), not through a chain. */
  pinned: boolean;
}

const FACILITY_NUMBER = /^\d{10}$/;

export function identityOf(leaf: CertificateView, der: Buffer, fingerprint: string, chain: Buffer[], pinned: boolean): ClientIdentity {
  const cn = nameValue(leaf.subject, 'CN');
  const ou = nameValue(leaf.subject, 'OU');
  const o = nameValue(leaf.subject, 'O');
  const base = {
    subject: formatName(leaf.subject),
    serial: leaf.serialHex,
    fingerprint,
    issuer: formatName(leaf.issuer),
    notAfter: leaf.notAfter,
    certificate: der,
    chain,
    pinned,
  };
  if (ou && FACILITY_NUMBER.test(ou)) {
    return { ...base, profile: 'device', facilityNumber: ou, ...(o ? { facilityName: o } : {}), ...(cn ? { deviceName: cn } : {}) };
  }
  if (cn && FACILITY_NUMBER.test(cn)) return { ...base, profile: 'facility', facilityNumber: cn, ...(o ? { facilityName: o } : {}) };
  return { ...base, profile: 'other' };
}
