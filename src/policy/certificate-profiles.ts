import { readSubjectPublicKeyInfo, type ExtendedKeyUsageName, type KeyUsageName } from '../pki/index.js';

/**
 * Certificate profiles as data. The CA issues within them; the lint rules in
 * certificate-lint.ts check every to-be-signed certificate against its profile.
 *
 * Subjects:
 * - facility: C=JP, O=<facility name>, CN=<10-digit 医療機関番号>
 * - device:   C=JP, O=<facility name>, OU=<医療機関番号>, CN=<device name>
 * - server:   C=JP, O=<operator>, CN=<first DNS name or IP>; SAN required
 * - operator: C=JP, O=<operator>, OU=operator, CN=<operator name> (a person of the
 *   operator's office signing in to the web console; issued only by `sekisho operator add`,
 *   never through a notice, EST or `cert issue`, so it is not an end-entity profile of those)
 */
/** The OU that marks an operator's sign-in certificate (the console's); reserved: never a node's identity. */
export const OPERATOR_SUBJECT_OU = 'operator';

export type CertificateProfileName = 'facility' | 'device' | 'server' | 'operator' | 'root-ca' | 'issuing-ca';
export const END_ENTITY_PROFILES = ['facility', 'device', 'server'] as const;
export type EndEntityProfileName = (typeof END_ENTITY_PROFILES)[number];

export interface CertificateProfile {
  name: CertificateProfileName;
  ca: boolean;
  pathLength?: number;
  keyUsage: KeyUsageName[];
  /**
   * Key usages added when the subject key is RSA. A server's RSA key gets
   * keyEncipherment: NSS (Firefox) refuses an RSA server certificate without
   * it (SEC_ERROR_INADEQUATE_KEY_USAGE) even when no RSA key transport is
   * negotiated. EC keys never get it (RFC 5480 §3: keyEncipherment MUST NOT
   * be set for id-ecPublicKey).
   */
  rsaKeyUsage?: KeyUsageName[];
  extendedKeyUsage: ExtendedKeyUsageName[];
  /** Upper bound on notAfter − notBefore. IHE ITI-19 recommends at most 2 years for node certificates. */
  maxValidityDays: number;
  defaultValidityDays: number;
  requireSubjectAltName: boolean;
  /** CRL distribution point and AIA (OCSP, caIssuers) are written when configured (a CA certificate: its issuer's CRL and certificate). */
  revocationPointers: boolean;
}

export const CERTIFICATE_PROFILES: Record<CertificateProfileName, CertificateProfile> = {
  facility: {
    name: 'facility',
    ca: false,
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: ['clientAuth'],
    maxValidityDays: 730,
    defaultValidityDays: 730,
    requireSubjectAltName: false,
    revocationPointers: true,
  },
  device: {
    name: 'device',
    ca: false,
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: ['clientAuth'],
    maxValidityDays: 730,
    defaultValidityDays: 730,
    requireSubjectAltName: false,
    revocationPointers: true,
  },
  server: {
    name: 'server',
    ca: false,
    keyUsage: ['digitalSignature'],
    rsaKeyUsage: ['keyEncipherment'],
    extendedKeyUsage: ['serverAuth'],
    maxValidityDays: 397,
    defaultValidityDays: 397,
    requireSubjectAltName: true,
    revocationPointers: true,
  },
  operator: {
    name: 'operator',
    ca: false,
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: ['clientAuth'],
    // A person's sign-in: shorter than a node's, renewed by issuing a new one.
    maxValidityDays: 397,
    defaultValidityDays: 397,
    requireSubjectAltName: false,
    revocationPointers: true,
  },
  'root-ca': {
    name: 'root-ca',
    ca: true,
    pathLength: 1,
    keyUsage: ['keyCertSign', 'cRLSign'],
    extendedKeyUsage: [],
    maxValidityDays: 365 * 20 + 5,
    defaultValidityDays: 365 * 20 + 5,
    requireSubjectAltName: false,
    revocationPointers: false,
  },
  'issuing-ca': {
    name: 'issuing-ca',
    ca: true,
    pathLength: 0,
    keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    extendedKeyUsage: [],
    maxValidityDays: 365 * 10 + 3,
    defaultValidityDays: 365 * 10 + 3,
    requireSubjectAltName: false,
    revocationPointers: true,
  },
};

/** The keyUsage a certificate of this profile carries for this subject key (DER SubjectPublicKeyInfo). */
export function keyUsageFor(profile: CertificateProfile, spki: Buffer): KeyUsageName[] {
  if (!profile.rsaKeyUsage?.length) return profile.keyUsage;
  let rsa = false;
  try {
    rsa = readSubjectPublicKeyInfo(spki).kind === 'rsa';
  } catch {
    rsa = false; // the subject_key lint refuses an unreadable key
  }
  return rsa ? [...profile.keyUsage, ...profile.rsaKeyUsage] : profile.keyUsage;
}

export function isEndEntityProfile(s: string): s is EndEntityProfileName {
  return (END_ENTITY_PROFILES as readonly string[]).includes(s);
}

/** Clock-skew allowance: certificates start this long before they are issued (RFC 5280 allows any past notBefore). */
export const NOT_BEFORE_BACKDATE_MS = 5 * 60_000;

/** notBefore for a certificate issued at `now`: backdated, in whole seconds (DER times carry no fractions). */
export function issuanceNotBefore(now: Date): Date {
  return new Date(Math.floor((now.getTime() - NOT_BEFORE_BACKDATE_MS) / 1000) * 1000);
}
