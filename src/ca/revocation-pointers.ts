import type { CertificateProfile } from '../policy/index.js';

/**
 * Paths under the revocation base URL (`urls.revocation`, plain http://): the
 * listener `sekisho serve`/`up` opens with --revocation-listen serves exactly
 * these, and the issuer writes exactly these into certificates. One table, so
 * the two cannot drift apart.
 */
export const REVOCATION_PATHS = {
  /** The issuing CA's CRL (DER). */
  crl: '/crl',
  /** The root's CRL (DER): covers the issuing CA certificate. */
  rootCrl: '/root.crl',
  /** OCSP, RFC 6960 (POST, and GET /ocsp/{base64}). */
  ocsp: '/ocsp',
  /** The issuing CA certificate (DER): caIssuers of end-entity certificates. */
  issuingCert: '/issuing.cer',
  /** The root certificate (DER): caIssuers of the issuing CA certificate. */
  rootCert: '/root.cer',
} as const;

/** The URL settings of config.json that go into certificates. */
export interface RevocationUrls {
  revocation?: string;
  crl?: string;
  ocsp?: string;
  caIssuers?: string;
}

export interface RevocationPointers {
  crl?: string;
  ocsp?: string;
  caIssuers?: string;
}

/**
 * What a certificate of `profile` points to. End entities: the issuing CA's
 * CRL, OCSP and certificate (an explicit `urls.crl`/`ocsp`/`caIssuers` wins
 * over the revocation base). The issuing CA: the root's CRL and certificate
 * (only from the revocation base: the root signs that CRL). The root: nothing.
 */
export function revocationPointers(urls: RevocationUrls, profile: CertificateProfile): RevocationPointers {
  if (!profile.revocationPointers) return {};
  const base = urls.revocation?.replace(/\/+$/, '');
  const at = (path: string) => (base ? `${base}${path}` : undefined);
  const chosen = profile.ca
    ? { crl: at(REVOCATION_PATHS.rootCrl), ocsp: undefined, caIssuers: at(REVOCATION_PATHS.rootCert) }
    : { crl: urls.crl ?? at(REVOCATION_PATHS.crl), ocsp: urls.ocsp ?? at(REVOCATION_PATHS.ocsp), caIssuers: urls.caIssuers ?? at(REVOCATION_PATHS.issuingCert) };
  return Object.fromEntries(Object.entries(chosen).filter(([, v]) => v !== undefined)) as RevocationPointers;
}
